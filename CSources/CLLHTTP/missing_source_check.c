/*
 * llhttp's C source is fetched by scripts/setup.sh and is not part of the
 * repository. This file stops the build with a clear message when it is
 * missing, instead of a wall of undefined symbols.
 */
#if !__has_include("llhttp.h")
#error "llhttp source is missing: run scripts/setup.sh to fetch it"
#endif
