"""Store: the results folder (records, arrays, the one atomic writer), comparison of two
runs, merging of many."""
