/* Umbrella header for llhttp, whose release source scripts/setup.sh fetches. */
#ifndef CLLHTTP_H
#define CLLHTTP_H

#if __has_include("llhttp.h")
#include "llhttp.h"
#else
#error "llhttp source is missing: run scripts/setup.sh to fetch it"
#endif

#endif
