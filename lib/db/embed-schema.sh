#!/bin/sh
# Turns schema/NNN_*.sql into a C array of migrations (build/schema.c), so the
# tools carry their schema with them. Migration N is the file numbered N.
echo '/* generated from the schema/ migrations by lib/db/embed-schema.sh: do not edit */'
echo '#include "db/migrations.h"'
echo 'const StoreMigration store_migrations[] = {'
n=0
for f in "$@"; do
    n=$((n + 1))
    num=$(basename "$f" | sed 's/^0*\([0-9][0-9]*\)_.*/\1/')
    if [ "$num" != "$n" ]; then
        echo "embed-schema: '$f': expected migration number $n" >&2
        exit 1
    fi
    printf '    { %d, "%s",\n' "$n" "$(basename "$f")"
    sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/      "/' -e 's/$/\\n"/' "$f"
    echo '    },'
done
echo '};'
echo "const int store_migration_count = $n;"
