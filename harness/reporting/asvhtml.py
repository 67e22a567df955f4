"""Make asv's published dashboard work without a CDN.

`asv publish` writes pages that load jQuery, flot, bootstrap and a few small plugins from
public CDNs; where those cannot be reached the dashboard shows only an error.  This fetches
the same files from the npm registry with `npm pack`, puts them in `<html>/vendor/` and
points the pages at the copies:

    asv publish && python -m harness.reporting.asvhtml .asv/html && asv preview

Run it after every `asv publish` (which rewrites the pages).  Tarballs are cached in
`<html>/../vendor-cache/`.  CDN addresses map to npm packages by rule (jsDelivr's `/npm/`
addresses are npm already; code.jquery.com is the `jquery` package; cdnjs libraries are
listed in `CDNJS`).  Where npm lacks the exact version the closest published one is used
and printed.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

__all__ = ["CDNJS", "main", "npm_source", "vendor"]

#: cdnjs library -> (npm package, version to use when npm lacks cdnjs's)
CDNJS = {
    "flot": ("flot", None),
    "blueimp-md5": ("blueimp-md5", None),
    "stupidtable": ("stupid-table-plugin", "1.1.3"),  # npm has only 1.1.3 (same API)
}
_TAG = re.compile(r"<(script|link)\b[^>]*?\b(src|href)=\"(https?://[^\"]+)\"[^>]*>")
_SRI = re.compile(r"\s+(integrity|crossorigin|referrerpolicy)=\"[^\"]*\"")


def npm_source(url: str) -> tuple[str, str, list[str]]:
    """`(npm package, version, candidate paths inside the package)` of a CDN address.

    **Raises:** `ValueError` for an address no rule covers.
    """
    if m := re.match(r"https://cdn\.jsdelivr\.net/npm/((?:@[^/]+/)?[^@/]+)@([^/]+)/(.+)$", url):
        return m.group(1), m.group(2), [m.group(3)]
    if m := re.match(r"https://code\.jquery\.com/jquery-([0-9.]+)(\.min)?\.js$", url):
        return "jquery", m.group(1), [f"dist/jquery{m.group(2) or ''}.js"]
    if m := re.match(r"https://cdnjs\.cloudflare\.com/ajax/libs/([^/]+)/([^/]+)/(.+)$", url):
        library, version, path = m.groups()
        if library not in CDNJS:
            raise ValueError(f"no npm package known for cdnjs library '{library}' ({url})")
        package, override = CDNJS[library]
        paths = [path, path.replace(".min.js", ".js"), f"js/{path}", f"dist/{path}"]
        return package, override or version, list(dict.fromkeys(paths))
    raise ValueError(f"no rule maps '{url}' to an npm package")


def _fetch(package: str, version: str, cache: Path) -> Path:
    """The npm tarball of `package@version` (downloaded once into `cache`)."""
    cache.mkdir(parents=True, exist_ok=True)
    name = package.lstrip("@").replace("/", "-")
    tarball = cache / f"{name}-{version}.tgz"
    if not tarball.is_file():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is not installed (apt-get install npm)")
        cmd = [npm, "pack", "--silent", f"{package}@{version}", "--pack-destination", str(cache)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0 or not tarball.is_file():
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"npm pack {package}@{version} failed: {last}")
    return tarball


def _extract(tarball: Path, paths: list[str], dest: Path) -> str:
    """Copy the first of `paths` found in the tarball under `dest`; its relative path."""
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
        for path in paths:
            member = f"package/{path}"
            if member in names:
                target = dest / path
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                if source is None:
                    continue
                target.write_bytes(source.read())
                return path
    raise RuntimeError(f"{tarball.name} has none of {', '.join(paths)}")


def vendor(html_dir: Path | str, *, cache: Path | str | None = None) -> list[str]:
    """Rewrite every page of `html_dir` to load its CDN files from `html_dir/vendor/`.

    **Returns:** one line per file vendored.
    """
    html_dir = Path(html_dir)
    pages = sorted(html_dir.glob("*.html"))
    if not pages:
        raise FileNotFoundError(f"no asv dashboard in '{html_dir}' (run asv publish first)")
    cache = Path(cache) if cache is not None else html_dir.parent / "vendor-cache"
    local: dict[str, str] = {}
    done: list[str] = []
    for page in pages:
        text = page.read_text()
        for url in dict.fromkeys(m.group(3) for m in _TAG.finditer(text)):
            if url in local or "github.com" in url:
                continue
            try:
                package, version, paths = npm_source(url)
            except ValueError:
                continue  # a link, not an asset
            relative = _extract(_fetch(package, version, cache), paths, html_dir / "vendor" / package)
            local[url] = f"vendor/{package}/{relative}"
            done.append(f"{url} -> {local[url]} (npm {package}@{version})")

        def swap(match: re.Match[str]) -> str:
            tag, url = match.group(0), match.group(3)
            if url not in local:
                return tag
            return _SRI.sub("", tag.replace(url, local[url]))

        page.write_text(_TAG.sub(swap, text))
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.reporting.asvhtml", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("html_dir", type=Path, nargs="?", default=Path(".asv/html"))
    args = parser.parse_args(argv)
    try:
        for line in vendor(args.html_dir):
            print(line)
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
