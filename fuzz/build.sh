#!/usr/bin/env bash
# fuzz/build.sh [OUTDIR]: build zd_fuzz.so, the libFuzzer target of the
# response parser and the JSON-to-row mapping (see zd_fuzz.c), with clang
# and -fsanitize=fuzzer-no-link,address,undefined.  OUTDIR defaults to
# fuzz/build.  Needs clang-14 and libclang-rt-14-dev (Debian 12).  Prints
# the LD_PRELOAD value the server needs (ASan runtime + asan_swift_stub.so).
set -euo pipefail
ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
OUT="${1:-$ROOT/fuzz/build}"
PG_CONFIG="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"
CC="${ZD_FUZZ_CC:-$(command -v clang-14 || command -v clang || true)}"
[[ -n "$CC" ]] || { echo "fuzz/build.sh: clang not found (apt-get install clang-14 libclang-rt-14-dev)" >&2; exit 1; }
RTDIR="$("$CC" -print-runtime-dir 2>/dev/null || true)"
if [[ ! -f "$RTDIR/libclang_rt.fuzzer_no_main-x86_64.a" ]]; then
	RTDIR="$(dirname "$("$CC" -print-file-name=libclang_rt.asan-x86_64.so)")"
fi
for f in libclang_rt.fuzzer_no_main-x86_64.a libclang_rt.asan-x86_64.so; do
	[[ -f "$RTDIR/$f" ]] || { echo "fuzz/build.sh: $RTDIR/$f not found (apt-get install libclang-rt-14-dev)" >&2; exit 1; }
done
mkdir -p "$OUT"
CFLAGS=(-g -O1 -fPIC -fno-omit-frame-pointer -D_GNU_SOURCE
	-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
	-fno-sanitize=function
	-Wall -Wno-ignored-attributes -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare
	-I "$ROOT/src" -I "$("$PG_CONFIG" --includedir-server)" $(pkg-config --cflags json-c))
objs=()
for src in "$ROOT/src/page.c" "$ROOT/src/row_map.c" "$ROOT/src/jsonb_write.c" "$ROOT/src/resource.c" "$ROOT/src/fetch_thread.c" "$ROOT/fuzz/zd_fuzz.c"; do
	obj="$OUT/$(basename "$src" .c).o"
	"$CC" "${CFLAGS[@]}" -c "$src" -o "$obj"
	objs+=("$obj")
done
# -Bsymbolic: the module's calls stay inside it even when zendesk_fdw.so,
# which defines the same functions, is loaded in the same backend
"$CC" -shared -fsanitize=address,undefined -shared-libasan -Wl,-Bsymbolic \
	-Wl,-rpath,"$RTDIR" -o "$OUT/zd_fuzz.so" "${objs[@]}" \
	"$RTDIR/libclang_rt.fuzzer_no_main-x86_64.a" $(pkg-config --libs json-c) -lstdc++
# see asan_swift_stub.c: without it an ASan-preloaded postgres hangs at start
"$CC" -shared -fPIC -O2 -o "$OUT/asan_swift_stub.so" "$ROOT/fuzz/asan_swift_stub.c"
# the last line: what the server's LD_PRELOAD must be
echo "$RTDIR/libclang_rt.asan-x86_64.so $OUT/asan_swift_stub.so"
