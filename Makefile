# zendesk_fdw: PGXS build.  `make && make install`; tests: see README.md.
MODULE_big = zendesk_fdw
OBJS = \
	src/zendesk_fdw.o \
	src/option.o \
	src/connection.o \
	src/http.o \
	src/fetch_thread.o \
	src/page.o \
	src/row_map.o \
	src/jsonb_write.o \
	src/resource.o \
	src/export.o \
	src/fdw_plan.o \
	src/fdw_scan.o \
	src/show.o \
	src/sync.o \
	src/upsert.o \
	src/sync_worker.o

EXTENSION = zendesk_fdw
DATA = sql/zendesk_fdw--1.0.sql
PGFILEDESC = "zendesk_fdw - Zendesk foreign data wrapper and incremental sync"

REGRESS_OPTS = --inputdir=test/regress --outputdir=test/regress/out --load-extension=zendesk_fdw
REGRESS = $(shell cat test/regress/schedule 2>/dev/null)

JSONC_CFLAGS := $(shell pkg-config --cflags json-c)
JSONC_LIBS := $(shell pkg-config --libs json-c)
CURL_CFLAGS := $(shell curl-config --cflags)
CURL_LIBS := $(shell curl-config --libs)

PG_CPPFLAGS = -I$(srcdir)/src $(JSONC_CFLAGS) $(CURL_CFLAGS)
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare -Wno-cast-function-type
SHLIB_LINK = $(JSONC_LIBS) $(CURL_LIBS) -pthread

# No LLVM bitcode: the JIT gains nothing here and clang may be absent.
override with_llvm = no

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
