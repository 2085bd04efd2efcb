#!/usr/bin/env python3
"""Flash by origin for scripts/footprint.sh.

usage: attribute.py NM ELF [BARE_ELF]

Reads `NM --size-sort -S -C ELF` (the demangled symbol table) and sums the sizes of the
symbols stored in flash (text, read-only data, and the initial image of .data) by where they
come from: quectel, atat, minimq, nom, heapless, core::fmt, the rest of core, embassy, the
application (the footprint crate), compiler-builtins, and machine-outlined fragments. With
BARE_ELF, also prints each origin's share minus the bare image's (what the driver adds).
Symbols the compiler gave no name (string literals, jump tables) are in no row; the total line
says how much that is.
"""
import re
import subprocess
import sys
from collections import Counter

ORDER = [
    "quectel",
    "atat",
    "minimq",
    "nom",
    "heapless",
    "embedded-tls + crypto",
    "core::fmt",
    "core (other)",
    "embassy",
    "app tasks (driver code inlined)",
    "app (footprint crate, driver code inlined)",
    "compiler-builtins / mem*",
    "outlined fragments",
    "other",
]
CRYPTO = ("embedded_tls", "p256", "elliptic_curve", "primeorder", "aes", "sha2", "hmac",
          "hkdf", "digest", "ghash", "ctr", "aes_gcm", "crypto_bigint", "der", "ecdsa",
          "generic_array", "subtle", "block_buffer", "polyval", "universal_hash", "rfc6979",
          "signature", "cipher", "typenum", "zeroize", "heapless_tls")


def origin(name: str) -> str:
    if name.startswith("OUTLINED_FUNCTION"):
        return "outlined fragments"
    if "TaskStorage<" in name and ("footprint::" in name or "row" in name):
        return "app tasks (driver code inlined)"
    if "core::fmt" in name:
        return "core::fmt"
    m = re.match(r"[<&(\s]*(?:dyn |impl |mut |const )*([A-Za-z_][A-Za-z0-9_]*)", name)
    root = m.group(1) if m else ""
    if "::" not in name:
        return "compiler-builtins / mem*" if root.startswith("__") or root in (
            "memcpy", "memmove", "memset", "memcmp", "bcmp") else "other"
    if root == "quectel":
        return "quectel"
    if root in ("atat", "minimq", "nom", "heapless"):
        return root
    if root in CRYPTO:
        return "embedded-tls + crypto"
    if root in ("core", "u8", "u16", "u32", "u64", "usize", "i32", "i64", "char", "str"):
        return "core (other)"
    if root.startswith("embassy"):
        return "embassy"
    if root in ("footprint",) or root.startswith("row"):
        return "app (footprint crate, driver code inlined)"
    if root == "compiler_builtins":
        return "compiler-builtins / mem*"
    return "other"


def flash_by_origin(nm: str, elf: str) -> Counter:
    out = subprocess.run([nm, "--size-sort", "-S", "-C", elf], check=True,
                         capture_output=True, text=True).stdout
    c: Counter = Counter()
    for line in out.splitlines():
        parts = line.split(None, 3)
        if len(parts) < 4:
            continue
        size, kind, name = int(parts[1], 16), parts[2], parts[3]
        if kind.lower() in ("t", "r", "d"):
            c[origin(name)] += size
    return c


def print_table(head: str, keys, row: Counter, bare, total_label: str) -> None:
    """A Markdown table of `row` by `keys` (with `bare`: its column and the difference)."""
    if bare is None:
        print(f"| {head} | flash (B) |\n|---|---:|")
    else:
        print(f"| {head} | flash (B) | bare image (B) | added (B) |\n|---|---:|---:|---:|")
    for k in keys:
        if row[k] == 0 and (bare is None or bare[k] == 0):
            continue
        if bare is None:
            print(f"| {k} | {row[k]} |")
        else:
            print(f"| {k} | {row[k]} | {bare[k]} | {row[k] - bare[k]} |")
    total = sum(row.values())
    if bare is None:
        print(f"| {total_label} | {total} |")
    else:
        tb = sum(bare.values())
        print(f"| {total_label} | {total} | {tb} | {total - tb} |")


def main() -> None:
    nm, elf = sys.argv[1], sys.argv[2]
    row = flash_by_origin(nm, elf)
    bare = flash_by_origin(nm, sys.argv[3]) if len(sys.argv) > 3 else None
    print_table("origin", ORDER, row, bare, "named symbols, total")


if __name__ == "__main__":
    main()
