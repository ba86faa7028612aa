#!/usr/bin/env bash
# The GPU path, run and measured in one command (issue 16). Run it in the repository root:
#
#     bash benchmarks/gpu_check.sh              # on the GPU machine: everything under $OUT (default ./out-gpu)
#     bash benchmarks/gpu_check.sh --dry-run    # rehearsal on a CPU: tiny sizes, every stage's code path
#     GPU_CHECK_DRY_RUN=1 bash benchmarks/gpu_check.sh
#     bash benchmarks/gpu_check.sh --fetch-wheels   # here, with the network: fill .wheels/ for the GPU machine
#
# Knobs (environment): OUT (default ./out-gpu), GPU_CHECK_BUDGET (seconds, default 450),
# GPU_CHECK_STAGES (comma-separated stages to run, default all; install, env and report always run),
# GPU_CHECK_CLIP_FRAMES (default 450), GPU_CHECK_REST_TESTS (test paths for pytest_rest),
# GPU_CHECK_REST_CPU=1 (the rest of the suite with the GPU hidden), GPU_CHECK_NO_QT=1 (act as if
# PyQt5 were missing), GPU_CHECK_FORCE_INSTALL=1 (install every carried wheel, even what imports:
# rehearses the install), PYTHON (default python3).
#
# Stages, each with its own timeout, a failure in one never stopping the others, all inside a
# budget (GPU_CHECK_BUDGET, default 450 s: the whole script ends within 8 minutes on an H100):
#   install      wheels carried in .wheels/ (PyAV, grad-cam + ttach, Qt if carried) for what is not
#                importable; pip --no-index, never the network; into a private --target folder
#   env          device name, driver, versions (printed, and in gpu_check.json)
#   pytest_cuda  python3 -m pytest -m cuda (the no-host-sync and fp16-vs-fp32 tests)
#   bench_gpu    benchmarks/bench_gpu.py: resnet50 and mobilenet_v3_large, short side 224 and full
#                1080p, batch 1 and 16: forward, Eigen-CAM step, whole frame, pipelined fps,
#                pytorch_grad_cam.EigenCAM, fp16 maps vs fp32 maps
#   clip         a synthetic 1920x1080 H.264 clip (the demo scene), timing the encoder alone
#   bench_video  benchmarks/bench_video.py on that clip: decode, model, render+encode, end to end
#   annotate     python3 main.py annotate on that clip (the command a user runs), fps
#   app          benchmarks/bench_app.py offscreen on a 1080p demo source for 20 s, if PyQt5 imports
#   pytest_rest  the rest of the suite (not cuda; not gui without PyQt5), with the time that is left
#   report       $OUT/gpu_check.json (every figure, device, versions) and $OUT/gpu_check.md (targets)
#
# $OUT gets at most 6 files: gpu_check.json, gpu_check.md, gpu_check.log, bench_gpu.json,
# junit_cuda.xml, junit_rest.xml. Scratch files (the clips) go to a temporary folder.
# Exit status: 0 when every stage ran (whatever the figures), 1 when a stage failed or timed out.

set -u -o pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
ROOT=$PWD

DRY=${GPU_CHECK_DRY_RUN:-0}
FETCH=0
for arg in "$@"; do
    case $arg in
        --dry-run) DRY=1 ;;
        --fetch-wheels) FETCH=1 ;;
        -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "gpu_check.sh: unknown argument $arg (use --dry-run)" >&2; exit 2 ;;
    esac
done
[ "$DRY" = 0 ] || DRY=1

if ((FETCH)); then
    # The wheels the GPU machine lacks, for its Python 3.12 on x86-64 (never fetched there: it is
    # offline). PyAV bundles FFmpeg with libx264; grad-cam is an sdist only, built here into a
    # pure-Python wheel; its other needs (matplotlib, scikit-learn, scipy, opencv) are there.
    # PyQt5 is not carried: with its Qt (about 70 MB) it would not fit the 64 MiB a call may carry.
    set -e
    PIP=${PYTHON:-python3}
    mkdir -p .wheels
    "$PIP" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .wheels av==18.1.0 ttach==0.0.3
    (cd "${TMPDIR:-/tmp}" && "$PIP" -m pip wheel --no-deps -w "$ROOT/.wheels" grad-cam==1.5.7)
    git check-ignore -q .wheels/x || { echo "gpu_check.sh: .wheels/ is not ignored by git" >&2; exit 1; }
    du -sh .wheels && ls -l .wheels
    exit 0
fi

OUT=${OUT:-$ROOT/out-gpu}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd) || exit 2
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX") || exit 2
trap 'rm -rf "$WORK"' EXIT
LOG=$OUT/gpu_check.log
STAGES=$WORK/stages.jsonl
: >"$LOG"
: >"$STAGES"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 QT_QPA_PLATFORM=offscreen PYTHONDONTWRITEBYTECODE=1
BUDGET=${GPU_CHECK_BUDGET:-450}
RESERVE=25 # kept back for the report
START=$SECONDS
FAILED=0

say() { echo "$*" | tee -a "$LOG"; }

record() { # name status rc seconds timeout note
    printf '{"stage": "%s", "status": "%s", "rc": %s, "seconds": %s, "timeout": %s, "note": "%s"}\n' \
        "$1" "$2" "$3" "$4" "$5" "$6" >>"$STAGES"
}

# want NAME: whether GPU_CHECK_STAGES (empty = all) names the stage.
want() { [ -z "${GPU_CHECK_STAGES:-}" ] || [[ ",$GPU_CHECK_STAGES," == *",$1,"* ]]; }

# run_stage NAME CAP_SECONDS COMMAND...: runs COMMAND under min(CAP, what the budget leaves),
# output to the log (and its last lines to the console); records status, exit code and time.
run_stage() {
    local name=$1 cap=$2
    shift 2
    if [ "${ALWAYS:-0}" != 1 ] && ! want "$name"; then
        record "$name" skipped null 0 0 "not in GPU_CHECK_STAGES"
        return 0
    fi
    local left=$((BUDGET - (SECONDS - START) - RESERVE))
    local t=$((cap < left ? cap : left))
    if ((t < 5)); then
        say "=== $name: skipped, the time budget is spent"
        record "$name" skipped null 0 0 "time budget spent"
        FAILED=1
        return 0
    fi
    say "=== $name (timeout ${t} s) $(date -u +%H:%M:%S)"
    local t0=$SECONDS rc
    timeout -k 10 "$t" "$@" >"$WORK/$name.out" 2>&1
    rc=$?
    cat "$WORK/$name.out" >>"$LOG"
    tail -n "${GPU_CHECK_TAIL:-12}" "$WORK/$name.out"
    local status=ok
    if ((rc == 124 || rc == 137)); then
        status=timeout
        FAILED=1
    elif ((rc != 0)); then
        status=failed
        FAILED=1
    fi
    say "=== $name: $status (rc $rc, $((SECONDS - t0)) s)"
    record "$name" "$status" "$rc" "$((SECONDS - t0))" "$t" ""
    return 0
}

# --- helper programs (written to the scratch folder) -------------------------------------------
cat >"$WORK/env.py" <<'PY'
"""Device name and versions -> JSON (argv[1]); a readable summary on stdout."""
import importlib.metadata as md
import json
import os
import platform
import shutil
import subprocess
import sys

info = {"python": sys.version.split()[0], "executable": sys.executable, "platform": platform.platform(),
        "cpus": os.cpu_count()}


def version(dist):
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


for dist in ("torch", "torchvision", "numpy", "opencv-python-headless", "opencv-python", "av", "grad-cam",
             "ttach", "PyQt5", "pytest-qt", "onnxruntime", "pytest", "pytest-timeout", "tqdm"):
    info[dist] = version(dist)
try:
    import torch

    info["cuda_available"] = torch.cuda.is_available()
    info["torch_cuda"] = torch.version.cuda
    info["cudnn"] = torch.backends.cudnn.version()
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info["device_name"] = p.name
        info["capability"] = f"{p.major}.{p.minor}"
        info["gpu_memory_gib"] = round(p.total_memory / 2**30, 1)
        info["multiprocessors"] = p.multi_processor_count
    else:
        info["device_name"] = f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
except Exception as exc:  # noqa: BLE001
    info["torch_error"] = repr(exc)
for mod in ("av", "pytorch_grad_cam", "ttach", "PyQt5", "pytestqt"):
    try:
        m = __import__(mod)
        info[f"import_{mod}"] = getattr(m, "__file__", "?")
    except Exception as exc:  # noqa: BLE001
        info[f"import_{mod}"] = None
        info[f"import_{mod}_error"] = f"{type(exc).__name__}: {exc}"[:300]
try:
    import av

    av.codec.Codec("libx264", "w")
    info["av_libx264"] = True
except Exception as exc:  # noqa: BLE001
    info["av_libx264"] = f"{type(exc).__name__}: {exc}"[:200]
if shutil.which("nvidia-smi"):
    try:
        q = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm",
                            "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
        info["nvidia_smi"] = q.stdout.strip() or q.stderr.strip()
    except Exception as exc:  # noqa: BLE001
        info["nvidia_smi"] = repr(exc)
try:
    info["git_commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                        timeout=10).stdout.strip() or None
except Exception:  # noqa: BLE001
    info["git_commit"] = None
with open(sys.argv[1], "w") as f:
    json.dump(info, f, indent=1)
for k, v in info.items():
    print(f"{k:>24}: {v}")
PY

cat >"$WORK/make_clip.py" <<'PY'
"""A synthetic H.264 clip of the demo scene; the encoder timed alone (frames made beforehand).

argv: path WxH frames fps json"""
import json
import sys
import time

sys.path.insert(0, ".")
from eigencam_live.video import DemoSource, VideoSink  # noqa: E402

path, size, count, fps, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
w, h = (int(v) for v in size.split("x"))
t0 = time.perf_counter()
src = DemoSource((w, h), fps, realtime=False, frames=count)
frames = []
while (f := src.read()) is not None:
    frames.append(f)
made = time.perf_counter() - t0
t0 = time.perf_counter()
with VideoSink(path, width=w, height=h, fps=fps, overwrite=True) as sink:  # annotate's crf and preset
    for f in frames:
        sink.write(f.image, f.pts)
enc = time.perf_counter() - t0
res = {"path": path, "size": size, "frames": len(frames), "fps": fps, "demo_ms_per_frame": 1000 * made / len(frames),
       "encode_seconds": enc, "encode_fps": len(frames) / enc, "encoder": "libx264 veryfast crf 20 (VideoSink defaults)"}
json.dump(res, open(out, "w"))
print(json.dumps(res))
PY

cat >"$WORK/annotate.py" <<'PY'
"""python3 main.py annotate ARGS, timed; its summary line parsed -> JSON (argv[1])."""
import json
import re
import subprocess
import sys
import time

out, args = sys.argv[1], sys.argv[2:]
t0 = time.perf_counter()
p = subprocess.run([sys.executable, "main.py", "annotate", *args], capture_output=True, text=True)
wall = time.perf_counter() - t0
sys.stdout.write(p.stdout[-4000:])
sys.stderr.write(p.stderr[-4000:])
m = re.search(r"(\d+) frames in ([\d.]+) s \(([\d.]+) fps\)", p.stdout)
res = {"command": "python3 main.py annotate " + " ".join(args), "rc": p.returncode, "wall_seconds": wall}
if m:
    res.update(frames=int(m.group(1)), seconds=float(m.group(2)), fps=float(m.group(3)))
json.dump(res, open(out, "w"))
print(json.dumps(res))
sys.exit(p.returncode or (0 if m else 1))
PY

cat >"$WORK/last_json.py" <<'PY'
"""The last line of a file that parses as a JSON object -> argv[2]."""
import json
import sys

for line in reversed(open(sys.argv[1], errors="replace").read().splitlines()):
    line = line.strip()
    if line.startswith("{"):
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        json.dump(obj, open(sys.argv[2], "w"))
        sys.exit(0)
sys.exit(1)
PY

# --- settings: the GPU run, or the CPU rehearsal -----------------------------------------------
if ((DRY)); then
    CLIP_SIZE=192x108 CLIP_FRAMES=24
    BENCH_GPU_ARGS=(--device cpu --resident --models resnet18 --frame-size 96x64 --short-sides 64
        --batches 1,2 --repeats 1 --gradcam-repeats 1)
    VIDEO_ARGS=(--frames 24 --repeats 1 --model resnet50 --short-side 64 --batch-size 4 --device cpu)
    ANNOTATE_ARGS=(--model resnet50 --weights none --short-side 64 --batch-size 4 --device cpu -q)
    APP_ARGS=(--seconds 3 --warmup 2 --size 192x108 --fps 30 --model resnet50 --short-side 64)
    REST_TESTS=(${GPU_CHECK_REST_TESTS:-tests/test_render.py tests/test_frames.py})
else
    CLIP_SIZE=1920x1080 CLIP_FRAMES=${GPU_CHECK_CLIP_FRAMES:-450}
    BENCH_GPU_ARGS=()
    VIDEO_ARGS=(--frames "$CLIP_FRAMES" --repeats 1 --model resnet50 --short-side 224 --batch-size 16)
    ANNOTATE_ARGS=(--model resnet50 --weights none --short-side 224 --batch-size 16 -q)
    APP_ARGS=(--seconds 20 --warmup 4 --size 1920x1080 --fps 30 --model resnet50 --short-side 224)
    REST_TESTS=(${GPU_CHECK_REST_TESTS:-})
fi
say "gpu_check: $( ((DRY)) && echo 'DRY RUN (CPU rehearsal, tiny sizes)' || echo 'GPU run'), OUT=$OUT, budget ${BUDGET} s, $(date -u +%FT%TZ)"

# --- install: carried wheels for what is missing ------------------------------------------------
install_wheels() {
    local site=$WORK/site wheels=() mod pattern found
    # module:wheel-file-pattern (one version of each is carried)
    for pair in "av:av-*.whl" "pytorch_grad_cam:grad_cam-*.whl" "ttach:ttach-*.whl" \
        "PyQt5:PyQt5-*.whl PyQt5_Qt5-*.whl PyQt5_sip-*.whl" "pytestqt:pytest_qt-*.whl"; do
        mod=${pair%%:*}
        if [ "${GPU_CHECK_FORCE_INSTALL:-0}" != 1 ] && "$PY" -c "import $mod" >/dev/null 2>&1; then
            echo "$mod: importable, nothing to install"
            continue
        fi
        found=0
        for pattern in ${pair#*:}; do
            for f in .wheels/$pattern; do
                [ -f "$f" ] && wheels+=("$f") && found=1
            done
        done
        ((found)) || echo "$mod: missing, and no wheel for it in .wheels/"
    done
    if ((${#wheels[@]} == 0)); then
        echo "nothing to install"
        return 0
    fi
    echo "installing into $site: ${wheels[*]}"
    timeout -k 10 120 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --disable-pip-version-check \
        --target "$site" "${wheels[@]}" || return 1
    export PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH}
    for mod in av pytorch_grad_cam ttach; do
        "$PY" -c "import $mod; print('$mod', getattr($mod, '__version__', ''), 'from', $mod.__file__)" 2>&1 | tail -n 1
    done
}
say "=== install $(date -u +%H:%M:%S)"
t0=$SECONDS
install_wheels >"$WORK/install.out" 2>&1
rc=$?
cat "$WORK/install.out" | tee -a "$LOG"
if ((rc)); then FAILED=1; fi
record install "$( ((rc)) && echo failed || echo ok)" "$rc" "$((SECONDS - t0))" 130 ""
say "=== install: rc $rc, $((SECONDS - t0)) s"

HAVE_QT=0
if [ "${GPU_CHECK_NO_QT:-0}" != 1 ] && "$PY" -c "import PyQt5.QtWidgets" >/dev/null 2>&1; then HAVE_QT=1; fi

# --- the stages ---------------------------------------------------------------------------------
ALWAYS=1 GPU_CHECK_TAIL=60 run_stage env 60 "$PY" "$WORK/env.py" "$WORK/env.json"

PYTEST=("$PY" -m pytest -p no:cacheprovider --continue-on-collection-errors -o junit_family=xunit2)
run_stage pytest_cuda 150 "${PYTEST[@]}" -q -rA --timeout=120 -m cuda --junitxml="$OUT/junit_cuda.xml"

run_stage bench_gpu 200 "$PY" benchmarks/bench_gpu.py --json "$OUT/bench_gpu.json" "${BENCH_GPU_ARGS[@]}"

CLIP=$WORK/clip_${CLIP_SIZE}.mp4
CLIP_NEEDED=0
for s in clip bench_video annotate; do want $s && CLIP_NEEDED=1; done
if ((CLIP_NEEDED)); then
    ALWAYS=1 run_stage clip 90 "$PY" "$WORK/make_clip.py" "$CLIP" "$CLIP_SIZE" "$CLIP_FRAMES" 30 "$WORK/clip.json"
fi
if ! ((CLIP_NEEDED)); then
    record bench_video skipped null 0 0 "not in GPU_CHECK_STAGES"
    record annotate skipped null 0 0 "not in GPU_CHECK_STAGES"
elif [ -s "$CLIP" ]; then
    run_stage bench_video 120 "$PY" benchmarks/bench_video.py --video "$CLIP" "${VIDEO_ARGS[@]}"
    "$PY" "$WORK/last_json.py" "$WORK/bench_video.out" "$WORK/bench_video.json" 2>/dev/null
    run_stage annotate 90 "$PY" "$WORK/annotate.py" "$WORK/annotate.json" "$CLIP" -o "$WORK/annotated.mp4" --force \
        "${ANNOTATE_ARGS[@]}"
else
    say "=== bench_video, annotate: skipped, no clip"
    record bench_video skipped null 0 0 "no clip"
    record annotate skipped null 0 0 "no clip"
    FAILED=1
fi

if ((HAVE_QT)); then
    run_stage app 75 "$PY" benchmarks/bench_app.py "${APP_ARGS[@]}"
    "$PY" "$WORK/last_json.py" "$WORK/app.out" "$WORK/app.json" 2>/dev/null
else
    say "=== app: skipped: no PyQt5"
    record app skipped null 0 0 "no PyQt5"
fi

if ((HAVE_QT)); then MARK="not cuda"; else MARK="not cuda and not gui"; fi
# The rest of the suite last: it takes the time that is left (GPU run: up to 240 s).
# -v: each test's outcome is in the log as it ends, even when the stage is cut short.
# GPU_CHECK_REST_CPU=1 hides the GPU from it (what CI sees); by default it runs with the GPU visible.
REST_ENV=()
if [ "${GPU_CHECK_REST_CPU:-0}" = 1 ]; then REST_ENV=(env CUDA_VISIBLE_DEVICES=); fi
run_stage pytest_rest 240 "${REST_ENV[@]}" "${PYTEST[@]}" -v -rfE --timeout=90 -m "$MARK" --junitxml="$OUT/junit_rest.xml" "${REST_TESTS[@]}"

# --- report -------------------------------------------------------------------------------------
cat >"$WORK/report.py" <<'PY'
"""Everything gathered -> gpu_check.json and gpu_check.md (targets marked met / not met)."""
import json
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

work, out, dry, total = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "1", int(sys.argv[4])


def load(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def junit(path):
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    cases = []
    for tc in root.iter("testcase"):
        outcome, message = "passed", ""
        for kind in ("failure", "error", "skipped"):
            el = tc.find(kind)
            if el is not None:
                outcome, message = kind, (el.get("message") or el.text or "")[:400]
                break
        cases.append({"name": f"{tc.get('classname')}::{tc.get('name')}", "outcome": outcome,
                      "seconds": float(tc.get("time") or 0), "message": message})
    count = {k: sum(c["outcome"] == k for c in cases) for k in ("passed", "failure", "error", "skipped")}
    return {"counts": count, "cases": cases}


stages = [json.loads(line) for line in (work / "stages.jsonl").read_text().splitlines() if line.strip()]
env = load(work / "env.json") or {}
bench = load(out / "bench_gpu.json") or {}
clip = load(work / "clip.json")
video = load(work / "bench_video.json")
annot = load(work / "annotate.json")
app = load(work / "app.json")
tests = {"cuda": junit(out / "junit_cuda.xml"), "rest": junit(out / "junit_rest.xml")}
app_stage = next((s for s in stages if s["stage"] == "app"), {})
rows = bench.get("rows", [])
gpu = bench.get("device") == "cuda"

targets = []


def target(name, goal, value, met, note=""):
    targets.append({"target": name, "goal": goal, "value": value, "met": met, "note": note})


def fmt(x, spec=".1f"):
    return "n/a" if x is None else format(x, spec)


# 1. The Eigen-CAM step <= 10 % of the fp16 forward, every case.
if rows:
    worst = max(rows, key=lambda r: r["cam_over_forward"])
    target("Eigen-CAM step / fp16 forward", "<= 10 % (every case)",
           f"{100 * worst['cam_over_forward']:.1f} % worst ({worst['model']} in {worst['input']} b{worst['batch']})",
           worst["cam_over_forward"] <= 0.10, "" if gpu else f"dtype {worst['dtype']}, not fp16")
else:
    target("Eigen-CAM step / fp16 forward", "<= 10 %", "no data", None)
# 2. Whole frame, resnet50, 1080p -> short side 224, batch 1.
# resnet50 at short side 224 (the rehearsal: its one model at its smallest side).
model = "resnet50" if any(r["model"] == "resnet50" for r in rows) else (rows[0]["model"] if rows else None)
shorts = sorted({r["short_side"] for r in rows if r["model"] == model})
side = 224 if 224 in shorts else (shorts[0] if shorts else None)
prim = next((r for r in rows if r["model"] == model and r["short_side"] == side and r["batch"] == 1), None)
if prim:
    target(f"whole frame, {model} {prim['frame']} -> {prim['input']}, batch 1 (Engine.process)", ">= 250 fps",
           f"{prim['fps']:.1f} fps ({prim['frame_ms']:.2f} ms)", prim["fps"] >= 250)
    target("  the same, two batches in flight (Engine.submit)", ">= 250 fps", f"{prim['pipelined_fps']:.1f} fps",
           prim["pipelined_fps"] >= 250, "informative: the loops of the app and annotate")
else:
    target("whole frame, resnet50 1080p -> 224, batch 1", ">= 250 fps", "no data", None)
# 3. >= 30x faster than pytorch_grad_cam.EigenCAM per frame.
gc = [r for r in rows if "speedup_vs_gradcam" in r]
if gc:
    low = min(gc, key=lambda r: r["speedup_vs_gradcam"])
    target("per frame vs pytorch_grad_cam.EigenCAM (batch 1)", ">= 30x (every case)",
           f"x{low['speedup_vs_gradcam']:.1f} lowest ({low['model']} in {low['input']}); "
           + ", ".join(f"{r['model']} {r['input']} x{r['speedup_vs_gradcam']:.1f}" for r in gc),
           low["speedup_vs_gradcam"] >= 30)
else:
    target("per frame vs pytorch_grad_cam.EigenCAM", ">= 30x", "no data (grad-cam missing?)", None)
# 4. annotate of a 1080p file >= 0.8x the slowest of decode and encode.
dec = video.get("decode_fps") if video else None
enc = clip.get("encode_fps") if clip else None
if dec and enc:
    floor = min(dec, enc)
    for label, fps in (("python3 main.py annotate (cold: model load excluded, warm-up included)",
                        annot.get("fps") if annot else None),
                       ("annotate_file, warm (bench_video end to end)", video.get("end_to_end_fps"))):
        target(f"{label}, {clip['size']}", f">= 0.8 x min(decode {dec:.0f}, encode {enc:.0f}) = {0.8 * floor:.0f} fps",
               "no data" if fps is None else f"{fps:.1f} fps = {fps / floor:.2f} x", None if fps is None else fps >= 0.8 * floor)
else:
    target("annotate 1080p vs decode and encode", ">= 0.8 x slowest", "no data", None)
# 5. fp16 maps equal fp32 maps.
agree = [r for r in rows if r.get("fp16_vs_fp32")]
if agree:
    lo = min(agree, key=lambda r: r["fp16_vs_fp32"]["r_min"])
    p = lo["fp16_vs_fp32"]
    target(f"{p['precision']} maps vs fp32 maps (same weights)", "r >= 0.999",
           f"r_min {p['r_min']:.5f} ({lo['model']} in {lo['input']}, {p['frames']} frames); "
           + ", ".join(f"{r['model']} {r['input']} {r['fp16_vs_fp32']['r_min']:.5f}" for r in agree),
           p["r_min"] >= 0.999, "" if gpu else "bf16 on the CPU")
else:
    target("fp16 maps vs fp32 maps", "r >= 0.999", "no data", None)
# 6. No host synchronisation inside the loop, and the fp16-vs-CPU test: from pytest -m cuda.
for test, goal in (("test_cuda_loop_never_syncs_the_host", "no host sync in the loop (sync debug mode 'error')"),
                   ("test_cuda_fp16_maps_match_cpu_fp32", "fp16 CUDA maps vs CPU fp32 (test, r > 0.99)")):
    case = next((c for c in (tests["cuda"] or {}).get("cases", []) if c["name"].endswith(test)), None)
    outcome = case["outcome"] if case else "not run"
    target(goal, "test passes", f"{outcome}" + (f": {case['message'][:120]}" if case and case["message"] else ""),
           {"passed": True, "failure": False, "error": False}.get(outcome))
# 7. The app offscreen on a 1080p source.
if app:
    target(f"app offscreen, {app.get('source')}, {app.get('model')}", "displayed fps >= 25 (informative)",
           f"{app.get('displayed_fps')} fps displayed, latency p50 {app.get('latency_ms_p50')} / p95 "
           f"{app.get('latency_ms_p95')} ms, processing {app.get('process_ms_median')} ms",
           (app.get("displayed_fps") or 0) >= 25)
else:
    target("app offscreen, 1080p demo source, 20 s", "displayed fps, latency",
           f"{app_stage.get('status')}: {app_stage.get('note')}" if app_stage.get("note")
           else f"no figures (stage {app_stage.get('status', 'not run')})", None)

report = {"dry_run": dry, "total_seconds": total, "device": env.get("device_name"), "env": env, "stages": stages,
          "targets": targets, "tests": tests, "bench_gpu": bench or None, "clip": clip, "bench_video": video,
          "annotate": annot, "app": app}
(out / "gpu_check.json").write_text(json.dumps(report, indent=1) + "\n")

mark = {True: "met", False: "NOT MET", None: "n/a"}
md = [f"# GPU check{' (DRY RUN on a CPU: tiny sizes, the verdicts mean nothing)' if dry else ''}", "",
      f"Device: **{env.get('device_name', '?')}**" + (f" ({env.get('nvidia_smi')})" if env.get("nvidia_smi") else ""),
      f"Python {env.get('python')}, torch {env.get('torch')} (CUDA {env.get('torch_cuda')}, cuDNN {env.get('cudnn')}), "
      f"torchvision {env.get('torchvision')}, numpy {env.get('numpy')}, "
      f"OpenCV {env.get('opencv-python-headless') or env.get('opencv-python')}, PyAV {env.get('av')} "
      f"(libx264: {env.get('av_libx264')}), grad-cam {env.get('grad-cam')}, PyQt5 {env.get('PyQt5')}; "
      f"commit {env.get('git_commit')}; {total} s in all. Weights random (nothing downloaded).", "",
      "| target | goal | value | |", "| --- | --- | --- | --- |"]
md += [f"| {t['target']} | {t['goal']} | {t['value']}{' (' + t['note'] + ')' if t['note'] else ''} | {mark[t['met']]} |"
       for t in targets]
if rows:
    md += ["", "bench_gpu (per frame; medians):", "",
           "| model | frame -> input | batch | dtype | forward ms | cam ms | cam/fwd | frame ms | fps | pipelined fps "
           "| grad-cam ms | x grad-cam | low vs fp32 r_min |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        md.append(f"| {r['model']} | {r['frame']} -> {r['input']} | {r['batch']} | {r['dtype']} | {r['forward_ms']:.3f} "
                  f"| {r['cam_ms']:.3f} | {100 * r['cam_over_forward']:.1f} % | {r['frame_ms']:.3f} | {r['fps']:.1f} "
                  f"| {r['pipelined_fps']:.1f} | {fmt(r.get('gradcam_ms'), '.2f')} | {fmt(r.get('speedup_vs_gradcam'))} "
                  f"| {fmt((r.get('fp16_vs_fp32') or {}).get('r_min'), '.5f')} |")
for e in bench.get("errors", []):
    md.append(f"- bench_gpu case failed: {e}")
if bench and not bench.get("complete"):
    md.append("- bench_gpu did not finish (timeout or crash): the rows above are the cases it completed")
if video or clip or annot:
    md += ["", f"Video ({(clip or {}).get('size')}, {(clip or {}).get('frames')} frames of the demo scene):", "",
           "| stage | fps |", "| --- | --- |",
           f"| encode alone (libx264 veryfast, crf 20) | {fmt((clip or {}).get('encode_fps'))} |"]
    if video:
        md += [f"| decode (threaded capture) | {fmt(video.get('decode_fps'))} |",
               f"| model + map (Engine.process, batch {video.get('batch_size')}) | {fmt(video.get('model_fps'))} |",
               f"| render + encode on the host | {fmt(video.get('render_encode_fps'))} |",
               f"| annotate_file end to end (warm) | {fmt(video.get('end_to_end_fps'))} |",
               f"| slowest stage / end to end | {fmt(video.get('slowest_over_e2e'), '.2f')} |"]
    if annot:
        md.append(f"| python3 main.py annotate | {fmt(annot.get('fps'))} (wall {annot.get('wall_seconds', 0):.1f} s, rc {annot.get('rc')}) |")
md += ["", "Tests:", ""]
for key, t in tests.items():
    if t is None:
        md.append(f"- pytest {key}: no junit file")
        continue
    c = t["counts"]
    md.append(f"- pytest {key}: {c['passed']} passed, {c['failure']} failed, {c['error']} errors, {c['skipped']} skipped")
    md += [f"  - {x['outcome'].upper()} {x['name']}: {x['message'][:200]}" for x in t["cases"]
           if x["outcome"] in ("failure", "error")][:30]
md += ["", "Stages:", "", "| stage | status | rc | seconds | timeout |", "| --- | --- | --- | --- | --- |"]
md += [f"| {s['stage']} | {s['status']}{': ' + s['note'] if s['note'] else ''} | {s['rc']} | {s['seconds']} | {s['timeout']} |"
       for s in stages]
(out / "gpu_check.md").write_text("\n".join(md) + "\n")
print("\n".join(md))
PY
say "=== report $(date -u +%H:%M:%S)"
timeout -k 5 60 "$PY" "$WORK/report.py" "$WORK" "$OUT" "$DRY" "$((SECONDS - START))" 2>&1 | tee -a "$LOG"
((${PIPESTATUS[0]} == 0)) || FAILED=1
say "gpu_check: done in $((SECONDS - START)) s; files in $OUT: $(cd "$OUT" && ls | tr '\n' ' ')"
exit "$FAILED"
