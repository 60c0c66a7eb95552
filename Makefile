# xfernas: one Makefile for every tool, the tests, fuzzing and benchmarks.
# `make` builds bin/xfer-*; `make deps` installs Debian packages (as root);
# `make check` runs the whole suite; `make demo` runs the main job.

CC       ?= cc
CFLAGS   ?= -O2 -g
WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wno-unused-parameter -Wno-format-truncation -Werror
PKGS     := sqlite3 libarchive zlib libpng jansson openssl stb openblas
XCFLAGS  := -std=c11 -D_GNU_SOURCE -Ilib -Itests $(WARN) -MMD -MP -fopenmp \
            $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lcsv -lcrypto -lm -lpthread -fopenmp

# SANITIZE=address,undefined builds everything (tests included) with sanitizers.
ifneq ($(SANITIZE),)
XCFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
LDFLAGS  += -fsanitize=$(SANITIZE)
endif

# CUDA: the backend in lib/nn/cuda is built when nvcc and cudnn.h are found;
# CUDA=0 forces it off, and lib/nn/cuda/none.c then stands in for it, so the
# CPU-only build never sees a CUDA header or library. CUDA_ARCH is the GPU
# the kernels are compiled for (sm_90: H100/H200; PTX rides along for newer).
CUDA_HOME ?= /usr/local/cuda
CUDA_ARCH ?= sm_90
NVCC      := $(shell command -v nvcc 2>/dev/null || ls $(CUDA_HOME)/bin/nvcc 2>/dev/null)
CUDNN_H   := $(firstword $(wildcard $(CUDA_HOME)/include/cudnn.h /usr/include/cudnn.h \
                 /usr/include/x86_64-linux-gnu/cudnn.h))
ifeq ($(CUDA),0)
CUDA_ON     :=
CUDA_STATUS := ✗ CUDA off (CUDA=0): CPU backend only
else ifneq ($(and $(NVCC),$(CUDNN_H)),)
CUDA_ON     := 1
CUDA_STATUS := ✓ CUDA found: $(NVCC), $(CUDNN_H): building the CUDA backend for $(CUDA_ARCH)
else
CUDA_ON     :=
CUDA_STATUS := ✗ CUDA not found (nvcc: $(or $(NVCC),missing), cudnn.h: $(or $(CUDNN_H),missing)): CPU backend only
endif

# A sanitizer build lives apart, so switching never mixes objects.
BUILD    := build$(if $(SANITIZE),-san)
BINDIR   := bin$(if $(SANITIZE),-san)
# Library sources: everything but lib/nn/cuda, plus the CUDA backend's C and
# CUDA files when it is on, else its stand-in (LIB_SRC_CPU, which the
# fuzzers always take).
LIB_SRC_CPU := $(filter-out lib/nn/cuda/%,$(wildcard lib/*/*.c lib/*/*/*.c)) lib/nn/cuda/none.c
ifeq ($(CUDA_ON),1)
LIB_SRC  := $(filter-out lib/nn/cuda/none.c,$(LIB_SRC_CPU) $(wildcard lib/nn/cuda/*.c))
LIB_CU   := $(wildcard lib/nn/cuda/*.cu)
else
LIB_SRC  := $(LIB_SRC_CPU)
LIB_CU   :=
endif
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o) $(LIB_CU:%.cu=$(BUILD)/%.cu.o) $(BUILD)/schema.o
LIBXFER  := $(BUILD)/libxfer.a
TOOLS    := ingest train-meta predict search
BINS     := $(TOOLS:%=$(BINDIR)/xfer-%)
SCHEMA   := $(sort $(wildcard schema/*.sql))

UNIT_SRC := $(wildcard tests/unit/*.c)
FX_OBJ   := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tests/fixtures/*.c))
GEN_BINS := $(BUILD)/tests/gen-fixtures

# Keep intermediate objects (the fuzzers' instrumented library among them).
.SECONDARY:

.PHONY: all deps check check-slurm test-unit test-cli fuzz fuzz-smoke bench bench-train bench-conv bench-acc bench-gpu bench-book bench-predict bench-transfer demo clean \
        banner FORCE
all: banner $(BINS)

banner:
	@echo "$(CUDA_STATUS)"

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(XCFLAGS) $(CFLAGS) -c $< -o $@

# The CPU kernels' short row loops stay loops: as memset/memmove calls per
# row (GCC's default) a training step is about 6% slower (bench/train_cpu).
$(BUILD)/lib/nn/cpu/%.o: XCFLAGS += -fno-tree-loop-distribute-patterns

# The CUDA backend: its C files see the CUDA headers (as system headers, so
# the project's warnings judge only its own code), its kernels go through
# nvcc with the host compiler's warnings fatal too; every tool links cuDNN,
# cuBLAS and the CUDA runtime (found again at run time through the rpath;
# the linker drops them from tools that never reach the backend). The
# fuzzers link the CPU-only set (LDLIBS_CPU).
LDLIBS_CPU := $(LDLIBS)
ifeq ($(CUDA_ON),1)
CUDA_INC  := -isystem $(CUDA_HOME)/include $(if $(filter-out $(CUDA_HOME)/include/,$(dir $(CUDNN_H))),-isystem $(dir $(CUDNN_H)))
NVCCFLAGS := -O3 -std=c++17 -arch=$(CUDA_ARCH) -Ilib $(CUDA_INC) -MMD -MP --Werror all-warnings \
             -Xcompiler -Wall,-Wextra,-Wno-unused-parameter,-Werror
LDLIBS    += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -Wl,--as-needed -lcudnn -lcublas -lcudart -lstdc++
$(BUILD)/lib/nn/cuda/%.o: XCFLAGS += $(CUDA_INC)
$(BUILD)/%.cu.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c $< -o $@
endif

# Records whether the CUDA backend is in, so that switching rebuilds the
# library (its member list changes) and relinks everything.
$(BUILD)/cuda.stamp: FORCE
	@mkdir -p $(BUILD)
	@echo 'CUDA_ON=$(CUDA_ON) CUDA_ARCH=$(CUDA_ARCH)' | cmp -s - $@ || \
	    echo 'CUDA_ON=$(CUDA_ON) CUDA_ARCH=$(CUDA_ARCH)' > $@
FORCE:

# Migrations are compiled into the library so installed tools need no schema/.
$(BUILD)/schema.c: $(SCHEMA) lib/db/embed-schema.sh
	@mkdir -p $(BUILD)
	sh lib/db/embed-schema.sh $(SCHEMA) > $@.tmp && mv $@.tmp $@
$(BUILD)/schema.o: $(BUILD)/schema.c
	$(CC) $(XCFLAGS) $(CFLAGS) -c $< -o $@

$(LIBXFER): $(LIB_OBJ) $(BUILD)/cuda.stamp
	@rm -f $@
	ar rcs $@ $(LIB_OBJ)

$(BINDIR)/xfer-%: $(BUILD)/%/main.o $(LIBXFER)
	@mkdir -p $(BINDIR)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Fixture writers (tests/fixtures) serve the unit tests, the CLI tests
# (through gen-fixtures) and the fuzzers' seed corpora.
$(BUILD)/tests/unit-tests: $(UNIT_SRC:%.c=$(BUILD)/%.o) $(FX_OBJ) $(LIBXFER)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

$(BUILD)/tests/gen-fixtures: $(BUILD)/tests/gen-fixtures.o $(FX_OBJ) $(LIBXFER)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Fuzzing: libFuzzer harnesses, one per reader, built with clang.
FUZZ_SRC     := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS    := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -Ilib -Itests -g -O1 -fsanitize=fuzzer-no-link,address,undefined \
                $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
$(BUILD)/fuzz/lib/%.o: lib/%.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -c $< -o $@
$(BUILD)/fuzz/schema.o: $(BUILD)/schema.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -c $< -o $@
$(BUILD)/fuzz/%: tests/fuzz/%.c $(LIB_SRC_CPU:%.c=$(BUILD)/fuzz/%.o) $(BUILD)/fuzz/schema.o
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer $^ -o $@ $(LDLIBS_CPU)

fuzz: $(FUZZ_BINS) $(BUILD)/tests/gen-fixtures
	FUZZ_SECONDS=$(FUZZ_SECONDS) sh tests/fuzz/run.sh $(FUZZ_BINS)
fuzz-smoke:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=4

test-cli: $(BINS) $(GEN_BINS)
	BIN=$(CURDIR)/$(BINDIR) GEN=$(CURDIR)/$(BUILD)/tests/gen-fixtures sh tests/cli/run.sh
test-unit: $(BUILD)/tests/unit-tests $(GEN_BINS)
	$(BUILD)/tests/unit-tests

# The unit tests come last: `make check` ends with cmocka's summary.
check: all
	@$(MAKE) --no-print-directory fuzz-smoke
	@$(MAKE) --no-print-directory test-cli
	@$(MAKE) --no-print-directory test-unit

# A real single-node Slurm started here (root, Debian's slurmd, slurmctld,
# munge): xfer-train-meta slurm's job array, a requeue, the merge job.
check-slurm: $(BINS) $(GEN_BINS)
	BIN=$(CURDIR)/$(BINDIR) GEN=$(CURDIR)/$(BUILD)/tests/gen-fixtures sh tests/slurm/run.sh

bench: $(BINS) $(GEN_BINS)
	sh bench/ingest.sh

# Training speed against PyTorch (needs Debian's python3-torch, by hand).
$(BUILD)/bench/train_cpu: $(BUILD)/bench/train_cpu.o $(LIBXFER)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
bench-train: $(BUILD)/bench/train_cpu
	BUILD=$(CURDIR)/$(BUILD) sh bench/train_cpu.sh

# The 3x3 convolution kernels alone, direct against im2col + sgemm.
$(BUILD)/bench/conv_cpu: $(BUILD)/bench/conv_cpu.o $(LIBXFER)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
bench-conv: $(BUILD)/bench/conv_cpu
	$(BUILD)/bench/conv_cpu

# GPU training speed against PyTorch on the GPU machine (shared/GPU.md;
# needs a CUDA build and PyTorch with CUDA: see bench/train_gpu.sh).
$(BUILD)/bench/train_gpu: $(BUILD)/bench/train_gpu.o $(LIBXFER)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
bench-gpu: $(BUILD)/bench/train_gpu
	BUILD=$(CURDIR)/$(BUILD) sh bench/train_gpu.sh

# Accuracy parity with PyTorch on the real Fashion-MNIST (python3-torch, by hand).
$(BUILD)/bench/train_acc: $(BUILD)/bench/train_acc.o $(LIBXFER)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
bench-acc: $(BUILD)/bench/train_acc $(BINS)
	BUILD=$(CURDIR)/$(BUILD) sh bench/train_acc.sh

# Metadata collection's bookkeeping share (queue, curve points, checkpoints).
bench-book: $(BINS) $(GEN_BINS)
	BIN=$(CURDIR)/$(BINDIR) BUILD=$(CURDIR)/$(BUILD) sh bench/bookkeeping.sh

# xfer-predict's fit and scoring speed on 50,000 synthetic runs.
bench-predict: $(BINS) $(GEN_BINS)
	BIN=$(CURDIR)/$(BINDIR) BUILD=$(CURDIR)/$(BUILD) sh bench/predict_speed.sh

# Transfer on the project's meta-dataset (data/meta): leave-one-task-out
# predictor quality and simulated searches (xfer, rea, random).
bench-transfer: $(BINS)
	BIN=$(CURDIR)/$(BINDIR) sh bench/transfer.sh

demo: all
	sh tests/demo.sh

# Debian packages the project needs (idempotent; run as root).
DEB_PKGS := build-essential pkg-config clang libclang-rt-14-dev libsqlite3-dev \
            libarchive-dev zlib1g-dev libpng-dev libjansson-dev libssl-dev \
            libcsv-dev libstb-dev libopenblas-dev libcmocka-dev \
            dataset-fashion-mnist time sqlite3 slurmctld slurmd slurm-client munge
deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | \
	    grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "installing:" $$missing; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "deps: all installed"; fi

clean:
	rm -rf build build-san bin bin-san

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
