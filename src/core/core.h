/*
 * core/core.h - what the other areas may use from core: errors (kpki/error.h), the clock
 * (kpki/clock.h), logging, bounded reads and atomic writes, polling files for changes,
 * durations and timestamps, addresses, string lists, YAML, fault injection. core depends on nothing else in kpki.
 */
#ifndef KP_CORE_CORE_H
#define KP_CORE_CORE_H

#include "core/addr.h"
#include "core/duration.h"
#include "core/fault.h"
#include "core/file.h"
#include "core/filewatch.h"
#include "core/log.h"
#include "core/strlist.h"
#include "core/yaml.h"
#include "kpki/clock.h"
#include "kpki/error.h"

#endif
