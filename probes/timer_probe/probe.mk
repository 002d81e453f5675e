# Built by the selftests' own Makefile (make -f Makefile -f probe.mk), so that the probe gets the tree's
# libbpf, bpftool, vmlinux.h, compilers and flags exactly as test_progs does, on every arch.
TIMER_PROBE_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
# bpf_timer_start's flags, where the tree's own uapi header (not the tools/ copy, which may run ahead of the
# kernel) defines them: the checks of a flag the kernel does not have skip, saying so.
TIMER_PROBE_UAPI := $(TOOLSDIR)/../include/uapi/linux/bpf.h
TIMER_PROBE_FLAGS := $(foreach f,BPF_F_TIMER_ABS BPF_F_TIMER_CPU_PIN,\
	$(if $(shell grep -Eqs '^[[:space:]]*$(f)[[:space:]]*=' $(TIMER_PROBE_UAPI) && echo y),-DHAVE_$(f)))

$(OUTPUT)/timer_probe.bpf.o: $(TIMER_PROBE_DIR)/timer_probe.bpf.c $(TIMER_PROBE_DIR)/timer_probe.h $(INCLUDE_DIR)/vmlinux.h $(BPFOBJ)
	$(call CLANG_BPF_BUILD_RULE,$<,$@,$(BPF_CFLAGS) $(CLANG_CFLAGS),timer_probe)

$(OUTPUT)/timer_probe.skel.h: $(OUTPUT)/timer_probe.bpf.o $(BPFTOOL)
	$(call msg,GEN-SKEL,timer_probe,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name timer_probe > $@.tmp && mv $@.tmp $@

$(OUTPUT)/timer_probe: $(TIMER_PROBE_DIR)/timer_probe.c $(TIMER_PROBE_DIR)/timer_probe.h $(OUTPUT)/timer_probe.skel.h $(BPFOBJ) $(wildcard $(TIMER_PROBE_UAPI))
	$(call msg,BINARY,timer_probe,$@)
	$(Q)$(CC) $(CFLAGS) $(TIMER_PROBE_FLAGS) -I$(OUTPUT) $< $(BPFOBJ) $(LDLIBS) -lm $(LDFLAGS) -o $@
