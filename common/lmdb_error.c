/* SPDX-License-Identifier: MIT */
/* LMDB's return codes as negative errno (see lmdb_error.h). */
#include <errno.h>
#include <lmdb.h>
#include "lmdb_error.h"

int
hv_lmdb_error(int rc)
{
    switch (rc) {
    case MDB_SUCCESS: return 0;
    case MDB_NOTFOUND: return -ENOENT;
    case MDB_KEYEXIST: return -EEXIST;
    case MDB_MAP_FULL: return -ENOSPC;
    case MDB_DBS_FULL:
    case MDB_READERS_FULL:
    case MDB_TXN_FULL:
    case MDB_CURSOR_FULL: return -ENOBUFS;
    case MDB_MAP_RESIZED: return -EAGAIN;
    case MDB_BAD_VALSIZE: return -EMSGSIZE;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH: return -EILSEQ;
    default:
        if (rc > 0)
            return -rc;          /* a system errno */
        return -EIO;
    }
}
