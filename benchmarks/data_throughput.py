"""Throughput of the data recipes, and the coarse-video background PSNR. A script, not a test.

Per recipe: clips/s, output MB/s (shard bytes) and input MB/s (source bytes), building
in-process with :func:`data_recipes.build.build` (no Prefect) on the cores given.
For copy-paste it also times the I/O floor: decoding the same foreground and
background files and encoding the (fitted) background video once per item, with the
same decoders, resizing and shard encoding and no pasting; the ratio recipe / floor
should stay <= 2.

PSNR: the coarse-video recipe's background against YouTube-VOS's ``impainting/``
frames (the task's reference; note that in the official sample those files are
byte-identical to the input frames), and against the exact background of copy-paste
clips (a real ground truth: a DAVIS person pasted on the balloon video).

Inputs are made from ../shared/data/layerflow_samples (research data, used locally,
never copied into the project)::

    OMP_NUM_THREADS=2 python benchmarks/data_throughput.py --cores 0,1 --size 240x360 --frames 16
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO.parent / "shared" / "data" / "layerflow_samples"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="240x360", help="clip HxW for the file recipes")
    parser.add_argument("--frames", type=int, default=16, help="frames per clip for the file recipes")
    parser.add_argument("--synthetic-count", type=int, default=512)
    parser.add_argument("--cores", default="0,1", help="CPU cores to pin to (comma-separated); '' = no pinning")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    return parser.parse_args()


def pin(cores: str) -> None:
    """Pin this process (and the threads it starts) to the given cores."""
    if cores:
        os.sched_setaffinity(0, {int(c) for c in cores.split(",")})
    import cv2

    cv2.setNumThreads(len(os.sched_getaffinity(0)))


def folder_bytes(paths) -> int:
    total = 0
    for path in paths:
        path = Path(path)
        total += sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size
    return total


####################################################################################
# Inputs
####################################################################################


def make_inputs(work: Path) -> dict[str, Path]:
    """Foregrounds, backgrounds, videos and layered images made from the LayerFlow samples."""
    import numpy as np
    from PIL import Image

    from layerflow_model.layerflow_folder import read_layerflow_sequence
    from layerflow_model.video_io import read_frames_folder, write_rgb_mp4, write_rgba_webm

    dirs = {name: work / name for name in ("fg", "bg", "videos", "layered")}
    for folder in dirs.values():
        folder.mkdir(parents=True, exist_ok=True)
    for name in ("goat", "lucia", "mallard-water", "paragliding"):
        clip = read_layerflow_sequence(SAMPLES / "DAVIS/480p" / name)
        rgba = np.concatenate([clip.fg, clip.alpha[..., None]], -1)
        Image.fromarray((rgba[0] * 255).round().astype(np.uint8)).save(dirs["fg"] / f"{name}.png")
        write_rgb_mp4(dirs["bg"] / f"{name}.mp4", clip.blend, fps=8)
        (dirs["layered"] / name).mkdir(exist_ok=True)
        Image.fromarray((rgba[0] * 255).round().astype(np.uint8)).save(dirs["layered"] / name / "fg.png")
        Image.fromarray((clip.bg[0] * 255).round().astype(np.uint8)).save(dirs["layered"] / name / "bg.png")
        Image.fromarray((clip.blend[0] * 255).round().astype(np.uint8)).save(dirs["layered"] / f"{name}.jpg")
    small = read_layerflow_sequence(SAMPLES / "DAVIS/480p/lucia")
    write_rgba_webm(dirs["fg"] / "lucia-walking.webm", small.fg[:, ::2, ::2], small.alpha[:, ::2, ::2], fps=8)
    balloon = read_frames_folder(SAMPLES / "Backgrounds_vid_train/balloon").rgb
    write_rgb_mp4(dirs["bg"] / "balloon.mp4", balloon, fps=8)
    for name in ("goat", "lucia"):
        shutil.copy(dirs["bg"] / f"{name}.mp4", dirs["videos"] / f"{name}.mp4")
    return dirs


####################################################################################
# Throughput
####################################################################################


def time_build(recipe, out: Path, chunk_size: int = 4) -> dict:
    from data_recipes import build

    start = time.perf_counter()
    manifest = build(recipe, out, chunk_size=chunk_size)
    seconds = time.perf_counter() - start
    out_bytes = sum(s.bytes for s in manifest.shards)
    return {"clips": manifest.total, "seconds": seconds, "clips_per_s": manifest.total / seconds,
            "out_MB_per_s": out_bytes / 1e6 / seconds, "skipped": len(manifest.skipped)}


def io_floor(recipe, out: Path) -> float:
    """Seconds to decode the copy-paste plan's inputs and encode the fitted background video once, per item.

    The same decoders, resizing and shard writer as the recipe, with no pasting; the
    recipe writes four layers where this writes one video.
    """
    import webdataset as wds

    from data_recipes.build import plan_chunks
    from data_recipes.framing import fit_frames
    from data_recipes.inputs import is_image, read_clip, read_image
    from data_recipes.shards import npz_bytes
    from layerflow_model.clip import to_uint8

    config = recipe.config
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for chunk in plan_chunks(recipe, 4):
        with open(out / f"floor-{chunk.index:06d}.tar", "wb") as stream, \
                wds.TarWriter(stream, encoder=False, mtime=0) as tar:
            for n, item in enumerate(chunk.items):
                spec = json.loads(item)
                fg = Path(spec["fg"])
                if is_image(fg):
                    read_image(fg)
                else:
                    read_clip(fg, require_alpha=True)
                frames = fit_frames(read_clip(Path(spec["bg"])).rgb[:config.frames], config.size)
                tar.write({"__key__": f"floor-{chunk.index}-{n}", "video.npz": npz_bytes({"bg": to_uint8(frames)})})
    return time.perf_counter() - start


####################################################################################
# Coarse-video background PSNR
####################################################################################


def psnr(a, b, mask=None) -> float:
    import numpy as np

    err = (a - b) ** 2 if mask is None else (a - b)[mask] ** 2
    mse = float(np.mean(err))
    return float("inf") if mse == 0 else float(10 * np.log10(1.0 / mse))


def coarse_video_psnr(fg_dir: Path) -> dict:
    from data_recipes.coarse_video import coarse_clip
    from data_recipes.copy_paste import CopyPasteConfig, CopyPasteRecipe
    from data_recipes.matting import Matter
    from layerflow_model.video_io import read_frames_folder

    matter = Matter()
    frames = read_frames_folder(SAMPLES / "YoutubeVOS/JPEGImages/SUV").rgb
    reference = read_frames_folder(SAMPLES / "YoutubeVOS/impainting/SUV").rgb
    clip = coarse_clip(frames, matter)
    result = {
        "youtube_vos_bg_psnr_db": psnr(clip.bg, reference),
        "youtube_vos_reference_equals_input": bool((frames == reference).all()),
        "youtube_vos_matte_fraction": float(clip.alpha.mean()),
    }
    pasted = CopyPasteRecipe(CopyPasteConfig(src=fg_dir, backgrounds=SAMPLES / "Backgrounds_vid_train", frames=16,
                                             scale=(0.5, 0.7)))
    truth_psnr, hole_psnr, input_psnr = [], [], []
    for item in pasted.plan():
        if not json.loads(item)["fg"].endswith(".png"):
            continue
        (sample,) = pasted.make(item)
        coarse = coarse_clip(sample.clip.blend, matter)
        covered = sample.clip.alpha > 0.5
        truth_psnr.append(psnr(coarse.bg, sample.clip.bg))
        hole_psnr.append(psnr(coarse.bg, sample.clip.bg, covered))
        input_psnr.append(psnr(sample.clip.blend, sample.clip.bg, covered))
    result.update({
        "pasted_bg_psnr_db": sum(truth_psnr) / len(truth_psnr),
        "pasted_bg_psnr_under_fg_db": sum(hole_psnr) / len(hole_psnr),
        "pasted_blend_psnr_under_fg_db": sum(input_psnr) / len(input_psnr),
        "pasted_clips": len(truth_psnr),
    })
    return result


####################################################################################
# Main
####################################################################################


def main() -> None:
    args = parse_args()
    pin(args.cores)
    from data_recipes import make_recipe, recipe_config
    from data_recipes.inputs import find_inputs
    from layerflow_model.video_io import write_text_atomic

    height, width = (int(v) for v in args.size.lower().split("x"))
    shape = {"frames": args.frames, "height": height, "width": width}
    work = args.work or Path(tempfile.mkdtemp(prefix="layerflow-bench-"))
    dirs = make_inputs(work / "inputs")
    results: dict = {"cores": sorted(os.sched_getaffinity(0)), "shape": shape}

    recipes = {
        "synthetic": (recipe_config("synthetic", count=args.synthetic_count), []),
        "copy-paste": (recipe_config("copy-paste", src=dirs["fg"], backgrounds=dirs["bg"], per_foreground=4, **shape),
                       None),
        "layered-images": (recipe_config("layered-images", src=dirs["layered"], **shape),
                           find_inputs(dirs["layered"], images=True, videos=False) + [
                               p for p in dirs["layered"].iterdir() if p.is_dir()]),
        "coarse-video": (recipe_config("coarse-video", src=dirs["videos"], **shape),
                         find_inputs(dirs["videos"], images=False, videos=True)),
        "layerflow-folder": (recipe_config("layerflow-folder", src=SAMPLES / "DAVIS/480p", **shape),
                             [p for p in (SAMPLES / "DAVIS/480p").iterdir() if p.is_dir()]),
        "frozen": (recipe_config("frozen", src=work / "out" / "copy-paste"), None),
    }
    for name, (config, inputs) in recipes.items():
        recipe = make_recipe(config)
        if inputs is None:  # copy-paste reads every item's fg and bg; frozen reads the copy-paste shards
            inputs = [Path(p) for item in recipe.plan() for p in json.loads(item).values() if isinstance(p, str)] \
                if name == "copy-paste" else recipe.plan()
        figures = time_build(recipe, work / "out" / name)
        figures["in_MB_per_s"] = folder_bytes(inputs) / 1e6 / figures["seconds"]
        results[name] = figures
        print(f"{name:17s} {figures['clips']:4d} clips in {figures['seconds']:6.1f} s: "
              f"{figures['clips_per_s']:7.2f} clips/s, out {figures['out_MB_per_s']:6.2f} MB/s, "
              f"in {figures['in_MB_per_s']:6.2f} MB/s", flush=True)

    floor = io_floor(make_recipe(recipes["copy-paste"][0]), work / "out" / "floor")
    results["copy_paste_io_floor_s"] = floor
    results["copy_paste_over_io_floor"] = results["copy-paste"]["seconds"] / floor
    print(f"copy-paste / I/O floor: {results['copy-paste']['seconds']:.1f} s / {floor:.1f} s = "
          f"{results['copy_paste_over_io_floor']:.2f}x (target <= 2x)", flush=True)

    results["coarse_video_psnr"] = psnr_figures = coarse_video_psnr(dirs["fg"])
    print("coarse-video background PSNR:", json.dumps(psnr_figures, indent=1))
    if args.json:
        write_text_atomic(args.json, json.dumps(results, indent=1))
    if args.work is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
