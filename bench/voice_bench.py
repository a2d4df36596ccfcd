"""Voice disguise benchmark (not a test): how long ``ivr.voice.disguise`` takes on a 10 s, 60 s
and 120 s recording of Persian speech (espeak-ng, 8 kHz mono 16-bit, as Asterisk writes it),
the median of a few runs each, file reading and writing included; and the one-off cost of
loading Praat in a fresh process.

    .venv/bin/python -m bench.voice_bench
    .venv/bin/python -m bench.voice_bench --runs 7 --seconds 10 30
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

TEXT = ("من امروز صبح به اداره ثبت اسناد رفتم. کارمند گفت پرونده شما گم شده و فردا دوباره بیایید. "
        "سه بار رفتم و هیچ کاری انجام ندادند. از صبح تا ظهر منتظر ماندم و کسی جواب نداد.")


def speech(folder: Path, seconds: int) -> Path:
    """``seconds`` of speech at 8 kHz: one espeak-ng sentence repeated."""
    one = folder / "one.wav"
    if not one.exists():
        wide = folder / "one.22k.wav"
        subprocess.run(["espeak-ng", "-v", "fa", "-w", str(wide), TEXT], check=True)
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(wide), "-ar", "8000", "-ac", "1",
                        "-sample_fmt", "s16", str(one)], check=True)
    with wave.open(str(one)) as w:
        frames = w.readframes(w.getnframes())
    need = seconds * 8000 * 2
    out = folder / f"speech-{seconds}.wav"
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes((frames * (need // len(frames) + 1))[:need])
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=int, nargs="+", default=[10, 60, 120])
    args = ap.parse_args(argv)
    cold = subprocess.run([sys.executable, "-c", "import time; t = time.perf_counter(); import parselmouth; "
                           "print(time.perf_counter() - t)"], check=True, capture_output=True, text=True)
    print(f"loading Praat (first recording in a process): {float(cold.stdout) * 1000:.0f} ms")
    from ivr import voice

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        voice.disguise(str(shutil.copyfile(speech(folder, 1), folder / "warm.wav")))  # warm up
        for seconds in args.seconds:
            source, took = speech(folder, seconds), []
            for run in range(args.runs):
                path = shutil.copyfile(source, folder / f"run{run}.wav")
                start = time.perf_counter()
                out = voice.disguise(str(path))
                took.append(time.perf_counter() - start)
                Path(out).unlink()
            print(f"{seconds:4d} s recording: median {statistics.median(took) * 1000:7.0f} ms "
                  f"(min {min(took) * 1000:.0f}, max {max(took) * 1000:.0f}, {args.runs} runs)")


if __name__ == "__main__":
    main()
