#!/usr/bin/env python3
"""Rewrites the function names of a wasm module so that binaryen's
`--reorder-functions-by-name` puts the instantiations of one generic function
next to each other (gzip finds their common code within its 32 KB window).

    order_names.py IN.wasm OUT.wasm

Only the "name" custom section changes; the Makefile strips it afterwards
(wasm-opt --strip-debug), so names never reach the browser. A function's new
name is its demangled name with generic arguments and Self types erased, then
its body size (similar sizes next to each other gzip better), then the full
original name (keeps names unique and the order stable):
`Deserializer>::deserialize_struct::<_> 00003012 <&mut serde_json::...`.
"""
import re
import sys


def leb(data, i):
    result = shift = 0
    while True:
        b = data[i]
        i += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return result, i


def uleb(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def body_sizes(data):
    """Function index -> body size in bytes (imported functions come first)."""
    sizes = {}
    imported = 0
    i = 8
    while i < len(data):
        sec_id = data[i]
        size, i = leb(data, i + 1)
        end = i + size
        if sec_id == 2:  # imports: count the functions
            count, j = leb(data, i)
            for _ in range(count):
                for _ in range(2):  # module and field names
                    length, j = leb(data, j)
                    j += length
                kind = data[j]
                j += 1
                if kind == 0:  # function: type index
                    _, j = leb(data, j)
                    imported += 1
                elif kind in (1, 2):  # table (reftype first) or memory: limits
                    if kind == 1:
                        j += 1
                    flags, j = leb(data, j)
                    _, j = leb(data, j)
                    if flags & 1:
                        _, j = leb(data, j)
                elif kind == 3:  # global: valtype, mutability
                    j += 2
                else:
                    sys.exit(f"unknown import kind {kind}")
        elif sec_id == 10:  # code
            count, j = leb(data, i)
            for k in range(count):
                length, j = leb(data, j)
                sizes[imported + k] = length
                j += length
        i = end
    return sizes


def sort_key(name, size):
    n = re.sub(r"\[[0-9a-f]+\]", "", name)  # v0 crate disambiguators
    n = re.sub(r"\{closure#\d+\}", "{closure}", n)
    prev = None
    while prev != n:  # erase generic arguments, innermost first
        prev = n
        n = re.sub(
            r"<([^<>]*)>",
            lambda m: "<_ as " + m.group(1).split(" as ")[1] + ">" if " as " in m.group(1) else "\x00",
            n,
        )
    n = n.replace("\x00", "<_>")
    return "%s %08d %s" % (re.sub(r"^<_ as ", "", n), size, name)


def rewrite_names(section, sizes):
    """`section` is the payload of the "name" section after its own name."""
    out = bytearray()
    j = 0
    while j < len(section):
        sub_id = section[j]
        size, j = leb(section, j + 1)
        body = section[j : j + size]
        j += size
        if sub_id == 1:  # function names
            count, k = leb(body, 0)
            new = bytearray(uleb(count))
            for _ in range(count):
                idx, k = leb(body, k)
                length, k = leb(body, k)
                name = body[k : k + length].decode("utf-8", "replace")
                k += length
                enc = sort_key(name, sizes.get(idx, 0)).encode()
                new += uleb(idx) + uleb(len(enc)) + enc
            body = bytes(new)
        elif sub_id != 0:  # local names etc. are not needed
            continue
        out += bytes([sub_id]) + uleb(len(body)) + body
    return bytes(out)


def main(src, dst):
    data = open(src, "rb").read()
    if data[:4] != b"\0asm":
        sys.exit(f"{src}: not a wasm module")
    out = bytearray(data[:8])
    i = 8
    found = False
    sizes = body_sizes(data)
    while i < len(data):
        start = i
        sec_id = data[i]
        size, i = leb(data, i + 1)
        end = i + size
        if sec_id == 0:
            nlen, j = leb(data, i)
            if data[j : j + nlen] == b"name":
                found = True
                payload = uleb(4) + b"name" + rewrite_names(data[j + nlen : end], sizes)
                out += bytes([0]) + uleb(len(payload)) + payload
                i = end
                continue
        out += data[start:end]
        i = end
    if not found:
        sys.exit(f"{src}: no name section (was wasm-bindgen run with --remove-name-section?)")
    open(dst, "wb").write(out)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
