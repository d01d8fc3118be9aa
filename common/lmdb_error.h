/* SPDX-License-Identifier: MIT */
/* LMDB's return codes as negative errno: the one place they are read, for
 * the broker's store and the agent's outbox alike. */
#ifndef HV_LMDB_ERROR_H
#define HV_LMDB_ERROR_H

/* MDB_NOTFOUND -> -ENOENT, MDB_MAP_FULL -> -ENOSPC, MDB_KEYEXIST -> -EEXIST,
 * a system errno -> its negative, anything else -> -EIO. */
int hv_lmdb_error(int rc);

#endif
