/* talos corpus driver for SQLite (written for talos, not upstream code).
 * Opens an in-memory database, runs argv[1] (or a built-in script with a
 * table, an index, a recursive CTE, a join, aggregates and JSON functions)
 * and prints every result row. */
#include <stdio.h>
#include "sqlite3.h"

static int row(void *ctx, int n, char **vals, char **cols)
{
    int i;
    (void)ctx;
    for (i = 0; i < n; i++) printf("%s%s=%s", i ? " " : "", cols[i], vals[i] ? vals[i] : "NULL");
    printf("\n");
    return 0;
}

int main(int argc, char **argv)
{
    const char *sql = argc > 1 ? argv[1] :
        "CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT, c REAL);"
        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM n WHERE x<1000)"
        "  INSERT INTO t(b,c) SELECT printf('row%04d', x), x*0.5 FROM n;"
        "CREATE INDEX tb ON t(b);"
        "SELECT count(*), sum(c), max(b) FROM t WHERE b LIKE 'row0%';"
        "SELECT json_object('a', a, 'b', upper(b)) FROM t WHERE a % 250 = 0;"
        "SELECT x.a, y.a FROM t x JOIN t y ON y.a = x.a * 2 WHERE x.a < 4 ORDER BY 1 DESC;";
    sqlite3 *db;
    char *err = NULL;

    if (sqlite3_open(":memory:", &db) != SQLITE_OK) return 1;
    printf("sqlite %s\n", sqlite3_libversion());
    if (sqlite3_exec(db, sql, row, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "error: %s\n", err);
        sqlite3_free(err);
        sqlite3_close(db);
        return 1;
    }
    sqlite3_close(db);
    return 0;
}
