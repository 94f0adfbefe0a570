#!/usr/bin/env python3
"""The bundle's wasm-opt run through binaryen's C API, so no C++ build is
needed: `libbinaryen.so` of binaryen 116 comes prebuilt in the PyPI wheel
`icpp-binaryen==116.0.1`, which setup installs (seconds, where building
binaryen from source took 10-17 minutes on 2 cores).

    wasm_opt.py LIBBINARYEN IN.wasm OUT.wasm

It does what this wasm-opt 116 command line does (tools/wasm-opt.cpp and
tools/optimization-options.h of that release), and writes the same bytes:

    wasm-opt -Oz -Oz --converge -ocimfs 0 --skip-pass=merge-similar-functions
      --enable-{bulk-memory,nontrapping-float-to-int,sign-ext,mutable-globals,
                reference-types,multivalue}
      --reorder-functions-by-name --strip-debug --strip-producers

The C API has no "skip a pass", so -Oz is spelled out: the passes
`PassRunner::addDefaultOptimizationPasses` adds at optimize level 2 and
shrink level 2 for a module without GC or DWARF (src/passes/pass.cpp),
without merge-similar-functions (it makes the gzipped bundle larger).
"""
import ctypes
import sys

PRE = ["duplicate-function-elimination", "memory-packing", "once-reduction"]
FUNCTION = [
    "ssa-nomerge", "dce", "remove-unused-names", "remove-unused-brs", "remove-unused-names",
    "optimize-instructions", "pick-load-signs", "precompute-propagate", "code-pushing",
    "simplify-locals-nostructure", "vacuum", "reorder-locals", "remove-unused-brs", "merge-locals",
    "coalesce-locals", "local-cse", "simplify-locals", "vacuum", "reorder-locals", "coalesce-locals",
    "reorder-locals", "vacuum", "code-folding", "merge-blocks", "remove-unused-brs",
    "remove-unused-names", "merge-blocks", "precompute-propagate", "optimize-instructions", "rse",
    "vacuum",
]
POST = [
    "dae-optimizing", "inlining-optimizing", "duplicate-function-elimination",
    "duplicate-import-elimination",
    # "merge-similar-functions" is skipped.
    "simplify-globals-optimizing", "remove-unused-module-elements", "reorder-globals", "directize",
    "generate-stack-ir", "optimize-stack-ir",
]
OZ = PRE + FUNCTION + POST
AFTER = ["reorder-functions-by-name", "strip-debug", "strip-producers"]
FEATURES = [
    "MVP", "BulkMemory", "NontrappingFPToInt", "SignExt", "MutableGlobals", "ReferenceTypes",
    "Multivalue",
]


class WriteResult(ctypes.Structure):
    _fields_ = [("binary", ctypes.c_void_p), ("binaryBytes", ctypes.c_size_t), ("sourceMap", ctypes.c_char_p)]


def load(path):
    lib = ctypes.CDLL(path)
    lib.BinaryenModuleRead.restype = ctypes.c_void_p
    lib.BinaryenModuleRead.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    lib.BinaryenModuleSetFeatures.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.BinaryenModuleRunPasses.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_uint32]
    lib.BinaryenModuleValidate.argtypes = [ctypes.c_void_p]
    lib.BinaryenModuleValidate.restype = ctypes.c_bool
    lib.BinaryenModuleAllocateAndWrite.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.BinaryenModuleAllocateAndWrite.restype = WriteResult
    lib.BinaryenModuleDispose.argtypes = [ctypes.c_void_p]
    lib.free.argtypes = [ctypes.c_void_p]
    for name in ("BinaryenSetOptimizeLevel", "BinaryenSetShrinkLevel", "BinaryenSetOneCallerInlineMaxSize"):
        getattr(lib, name).argtypes = [ctypes.c_int]
    for name in FEATURES:
        getattr(lib, "BinaryenFeature" + name).restype = ctypes.c_uint32
    return lib


def run(lib, module, passes):
    names = (ctypes.c_char_p * len(passes))(*[p.encode() for p in passes])
    lib.BinaryenModuleRunPasses(module, names, len(passes))
    if not lib.BinaryenModuleValidate(module):
        sys.exit("wasm_opt.py: the module is invalid after the passes")


def write(lib, module):
    result = lib.BinaryenModuleAllocateAndWrite(module, None)
    data = ctypes.string_at(result.binary, result.binaryBytes)
    lib.free(result.binary)
    return data


def main(libpath, src, dst):
    lib = load(libpath)
    data = open(src, "rb").read()
    module = lib.BinaryenModuleRead(data, len(data))
    features = 0
    for name in FEATURES:
        features |= getattr(lib, "BinaryenFeature" + name)()
    lib.BinaryenModuleSetFeatures(module, features)
    lib.BinaryenSetOptimizeLevel(2)
    lib.BinaryenSetShrinkLevel(2)
    lib.BinaryenSetOneCallerInlineMaxSize(0)  # -ocimfs 0

    def passes():  # -Oz -Oz, then the three named passes
        run(lib, module, OZ)
        run(lib, module, OZ)
        run(lib, module, AFTER)

    passes()
    last = len(write(lib, module))
    while True:  # --converge: again while the binary shrinks
        passes()
        size = len(write(lib, module))
        if size >= last:
            break
        last = size
    out = write(lib, module)
    lib.BinaryenModuleDispose(module)
    with open(dst, "wb") as f:
        f.write(out)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
