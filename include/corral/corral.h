/* The whole public API of corral, for handler modules and MPMs: include
 * this one header. */
#ifndef CORRAL_CORRAL_H
#define CORRAL_CORRAL_H

#include "corral/types.h"
#include "corral/log.h"
#include "corral/request.h"
#include "corral/module.h"
#include "corral/mpm.h"
#include "corral/status.h"
#include "corral/work_queue.h"

#define CR_VERSION "0.1.0"

#endif
