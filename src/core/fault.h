/*
 * core/fault.h - fault injection for the storage layer, so error paths are run, not only written
 * (SQLite's habit). Every file operation of core/file.c that changes the disk (open for
 * writing, write, sync, rename, symlink, mkdir) first calls kp_fault_check(); it counts the
 * operations and, when armed, makes the Nth fail with a chosen errno or kills the process with
 * SIGKILL right there. (fchmod and close are not injection points: they follow an open that is.)
 *
 * Armed by kp_fault_arm() (unit tests) or, once per process, from the environment (integration
 * tests of the real binary):
 *   KPKI_FAULT_FAIL_AT=N[:ERRNO]   the Nth operation fails (default errno ENOSPC)
 *   KPKI_FAULT_KILL_AT=N           the process is SIGKILLed before the Nth operation
 * Unarmed, the cost is one relaxed atomic increment per file operation. Thread-safe.
 */
#ifndef KP_CORE_FAULT_H
#define KP_CORE_FAULT_H

/* Returns 0 to go ahead, or an errno value the caller must fail with. `op` names the operation
 * for the debug log ("write", "rename", ...). */
int kp_fault_check(const char *op);

/* fail_at / kill_at: 1-based operation index, 0 = off. Resets the operation counter. */
void kp_fault_arm(unsigned long fail_at, int fail_errno, unsigned long kill_at);

/* Number of operations counted since the last arm (or process start). */
unsigned long kp_fault_count(void);

#endif
