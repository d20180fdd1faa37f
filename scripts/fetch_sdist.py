#!/usr/bin/env python3
"""Download one source distribution from PyPI's simple index: fetch_sdist.py NAME VERSION DEST_DIR.

`pip download --no-binary` would also try to build the package's metadata (for llama-cpp-python
that means a CMake configure), which we do not need: we only want the vendored sources inside.
"""
import os
import re
import sys
import urllib.parse
import urllib.request

name, version, dest = sys.argv[1], sys.argv[2], sys.argv[3]
index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple/").rstrip("/") + "/"
page_url = urllib.parse.urljoin(index, name + "/")
page = urllib.request.urlopen(page_url).read().decode()
fname = f"{name.replace('-', '_')}-{version}.tar.gz"
links = [l for l in re.findall(r'href="([^"]+)"', page) if fname in l]
if not links:
    sys.exit(f"no sdist {fname} on {page_url}")
url = urllib.parse.urljoin(page_url, links[0].split("#")[0])
os.makedirs(dest, exist_ok=True)
out = os.path.join(dest, fname)
if not os.path.exists(out):
    tmp = out + ".part"
    urllib.request.urlretrieve(url, tmp)
    os.replace(tmp, out)
print(out)
