#!/usr/bin/env python3
"""Flash by source crate with LTO's inlining resolved, for scripts/footprint.sh.

usage: attribute_inlined.py OBJDUMP SYMBOLIZER NM ROOT ELF [BARE_ELF]

`attribute.py` reads the symbol table, so the driver code that LTO inlines into the
application's task functions is counted as "app tasks". This script reads the line tables
instead (ELF built with `debug = "line-tables-only"`, which changes no code): every
instruction of .text is attributed, through `SYMBOLIZER --inlining`, to the innermost inlined
frame that belongs to a crate other than `core` (core's generic helpers, `?` and `Option`
methods count for the crate whose code instantiated them; `core::fmt` counts for itself).
Read-only data, `.data` and the vector table are attributed by symbol name as in
`attribute.py`; constants without a symbol (string literals, jump tables) have a row of their
own, so the total is the image's flash.

Prints three Markdown blocks: flash by crate (with BARE_ELF: the bare image's and the
difference), quectel's share by module (`src/at`, `src/command`, ...), and quectel's 15 largest
source functions (the enclosing `fn` of the innermost quectel frame's line).
"""
import os
import re
import subprocess
import sys
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import attribute  # noqa: E402  (the symbol-name classification, for non-code sections)

CRYPTO = set(attribute.CRYPTO) | {"embedded-tls", "p256", "elliptic-curve", "aes-gcm",
                                  "crypto-bigint", "generic-array", "block-buffer",
                                  "universal-hash", "heapless-tls"}
ORDER = ["quectel", "minimq", "atat", "nom", "heapless", "serde", "embedded-tls + crypto",
         "core::fmt", "core (other)", "embassy", "cortex-m, critical-section",
         "compiler-builtins / mem*", "app (footprint crate)", "other crates",
         "constants without a symbol"]


def crate_of(path: str, root: str) -> str:
    if "/examples/footprint/" in path:
        return "app (footprint crate)"
    if "/library/core/src/fmt/" in path:
        return "core::fmt"
    if "/library/compiler-builtins/" in path or "/compiler_builtins" in path:
        return "compiler-builtins / mem*"
    if "/library/" in path and "/rustlib/" in path or "/rustc/" in path:
        return "core (other)"
    if path.startswith(os.path.join(root, "vendor", "embedded-tls")):
        return "embedded-tls + crypto"
    if path.startswith(os.path.join(root, "src") + "/"):
        return "quectel"
    m = re.search(r"/registry/src/[^/]+/([A-Za-z0-9_-]+?)-\d+\.\d+\.\d+[^/]*/", path)
    if not m:
        return "other crates"
    name = m.group(1)
    if name.startswith("embassy"):
        return "embassy"
    if name in ("minimq", "atat", "nom", "heapless"):
        return name
    if name.startswith("serde"):
        return "serde"
    if name == "zeroize":
        return "other crates"  # used by the driver itself, to wipe secrets
    if name in CRYPTO or name.replace("-", "_") in CRYPTO:
        return "embedded-tls + crypto"
    if name in ("cortex-m", "cortex-m-rt", "critical-section", "portable-atomic"):
        return "cortex-m, critical-section"
    return "other crates"


def sections(elf: str, objdump: str):
    """(name, addr, size) of the allocated sections stored in flash."""
    out = subprocess.run([objdump, "-h", elf], check=True, capture_output=True, text=True).stdout
    res = []
    for line in out.splitlines():
        p = line.split()
        if len(p) >= 5 and p[0].isdigit() and p[1] in (".vector_table", ".text", ".rodata", ".data"):
            res.append((p[1], int(p[3], 16), int(p[2], 16)))
    return res


def instructions(elf: str, objdump: str):
    """(address, size) of every instruction (and literal-pool word) of .text."""
    out = subprocess.run([objdump, "-d", "--no-show-raw-insn", "-j", ".text", elf], check=True,
                         capture_output=True, text=True).stdout
    addrs = []
    for line in out.splitlines():
        m = re.match(r"^\s+([0-9a-f]+):\s", line)
        if m:
            addrs.append(int(m.group(1), 16))
    addrs = sorted(set(addrs))
    return addrs


class SourceFns:
    """The enclosing `fn` of a source line (a regex scan, cached per file)."""

    def __init__(self) -> None:
        self.cache: dict = {}

    def name(self, path: str, line: int) -> str:
        if line == 0:
            return "(no line: generated code, e.g. a state machine's dispatch)"
        if path not in self.cache:
            fns = []
            try:
                with open(path, encoding="utf-8", errors="replace") as f:
                    for i, text in enumerate(f, 1):
                        # A `macro_rules!` is named like a `fn` (its expansions carry its lines).
                        m = re.search(r"\b(?:fn\s+|macro_rules!\s*)([A-Za-z0-9_]+)", text)
                        if m and not text.lstrip().startswith("//"):
                            fns.append((i, m.group(1)))
            except OSError:
                pass
            self.cache[path] = fns
        best = "?"
        for i, n in self.cache[path]:
            if i > line:
                break
            best = n
        return best


def attribute_elf(objdump: str, symbolizer: str, nm: str, root: str, elf: str):
    secs = sections(elf, objdump)
    text = next((s for s in secs if s[0] == ".text"), None)
    crates: Counter = Counter()
    modules: Counter = Counter()
    fns: Counter = Counter()
    if text is not None:
        _, start, size = text
        addrs = instructions(elf, objdump)
        end = start + size
        # Each address owns the bytes up to the next one (literal pools included).
        spans = [(a, (addrs[i + 1] if i + 1 < len(addrs) else end) - a)
                 for i, a in enumerate(addrs)]
        out = subprocess.run([symbolizer, "--inlining", "--functions=none", "-e", elf],
                             input="\n".join(hex(a) for a, _ in spans), check=True,
                             capture_output=True, text=True).stdout
        blocks = out.strip("\n").split("\n\n")
        src = SourceFns()
        for (_, n), block in zip(spans, blocks):
            frames = []  # innermost first: (path, line)
            for loc in block.split("\n"):
                m = re.match(r"(.*):(\d+):\d+$", loc)
                if m and m.group(1) != "??":
                    frames.append((m.group(1), int(m.group(2))))
            owner = None
            for path, line in frames:
                c = crate_of(path, root)
                if c != "core (other)":
                    owner = c
                    break
            if owner is None:
                owner = "core (other)" if frames else "other crates"
            crates[owner] += n
            if owner == "quectel":
                path, line = next((p, l) for p, l in frames if crate_of(p, root) == "quectel")
                rel = os.path.relpath(path, os.path.join(root, "src"))
                parts = rel.split("/")
                module = parts[0] + "/" if len(parts) > 1 else rel
                module = {"mqtt/": "mqtt.rs", "state/": "state.rs", "ota/": "ota.rs"}.get(module, module)
                modules["src/" + module] += n
                fns[f"src/{rel}: {src.name(path, line)}"] += n
    # The other flash sections by symbol name.
    named = 0
    nm_out = subprocess.run([nm, "-S", "-C", elf], check=True, capture_output=True, text=True).stdout
    for line in nm_out.splitlines():
        p = line.split(None, 3)
        if len(p) < 4 or p[2].lower() not in ("r", "d"):
            continue
        o = attribute.origin(p[3])
        o = {"app tasks (driver code inlined)": "app (footprint crate)",
             "app (footprint crate, driver code inlined)": "app (footprint crate)",
             "outlined fragments": "other crates", "other": "other crates"}.get(o, o)
        crates[o] += int(p[1], 16)
        named += int(p[1], 16)
    non_text = sum(s[2] for s in secs if s[0] != ".text")
    crates["constants without a symbol"] += max(0, non_text - named)
    return crates, modules, fns


def main() -> None:
    objdump, symbolizer, nm, root, elf = sys.argv[1:6]
    bare_elf = sys.argv[6] if len(sys.argv) > 6 else None
    root = os.path.abspath(root)
    row, modules, fns = attribute_elf(objdump, symbolizer, nm, root, elf)
    bare = attribute_elf(objdump, symbolizer, nm, root, bare_elf)[0] if bare_elf else None
    attribute.print_table("crate", ORDER + sorted(set(row) - set(ORDER)), row, bare,
                          "total (flash of this build)" if bare is None
                          else "total (flash of these builds)")
    print()
    print("| quectel module | flash (B) |\n|---|---:|")
    for k, v in modules.most_common():
        print(f"| `{k}` | {v} |")
    print()
    print("| quectel source function (inlined copies included) | flash (B) |\n|---|---:|")
    for k, v in fns.most_common(15):
        print(f"| `{k}` | {v} |")


if __name__ == "__main__":
    main()
