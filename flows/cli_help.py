"""Help text of the ``layerflow`` commands, reflowed to the terminal's width."""

from __future__ import annotations

import inspect

import click
from typer.core import TyperGroup


def reflowed(help_text: str) -> str:
    """A docstring's paragraphs each on one line, to be wrapped where the terminal ends.

    Typer's rich help keeps a docstring's single line breaks, so a paragraph wrapped at 120
    columns in the source breaks raggedly at 80. A paragraph that starts with ``\\b`` (click's
    mark for text not to rewrap) is kept as it is; so is anything after a ``\\f`` line.
    """
    shown, cut, rest = inspect.cleandoc(help_text).partition("\f")
    paragraphs = [p if p.startswith("\b") else " ".join(p.split()) for p in shown.split("\n\n")]
    return "\n\n".join(paragraphs) + cut + rest


class ReflowedHelpGroup(TyperGroup):
    """A command group whose commands show their docstrings reflowed (:func:`reflowed`)."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None and command.help:
            command.help = reflowed(command.help)
        return command
