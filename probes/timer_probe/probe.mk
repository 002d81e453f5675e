# Built by the selftests' own Makefile (make -f Makefile -f probe.mk), so that the probe gets the tree's
# libbpf, bpftool, vmlinux.h, compilers and flags exactly as test_progs does, on every arch.
TIMER_PROBE_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))

$(OUTPUT)/timer_probe.bpf.o: $(TIMER_PROBE_DIR)/timer_probe.bpf.c $(INCLUDE_DIR)/vmlinux.h $(BPFOBJ)
	$(call CLANG_BPF_BUILD_RULE,$<,$@,$(BPF_CFLAGS) $(CLANG_CFLAGS),timer_probe)

$(OUTPUT)/timer_probe.skel.h: $(OUTPUT)/timer_probe.bpf.o $(BPFTOOL)
	$(call msg,GEN-SKEL,timer_probe,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name timer_probe > $@.tmp && mv $@.tmp $@

$(OUTPUT)/timer_probe: $(TIMER_PROBE_DIR)/timer_probe.c $(OUTPUT)/timer_probe.skel.h $(BPFOBJ)
	$(call msg,BINARY,timer_probe,$@)
	$(Q)$(CC) $(CFLAGS) -I$(OUTPUT) $< $(BPFOBJ) $(LDLIBS) -lm $(LDFLAGS) -o $@
