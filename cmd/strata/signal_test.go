package main

import (
	"context"
	"os"
	goruntime "runtime"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSignalAfterTheCommandSetsTheStatus: a SIGINT or SIGTERM that arrives
// after the command's work is done, but before strata exits, still ends
// strata with 130 or 143, as one that arrives during a step does. The
// signal is sent to this thread from the hook between the command's end
// and the status check, so it is delivered before the check: no timing.
func TestSignalAfterTheCommandSetsTheStatus(t *testing.T) {
	t.Cleanup(func() { afterCommand = nil })
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(unix.SignalName(sig), func(t *testing.T) {
			afterCommand = func() {
				// tgkill to the calling thread delivers the signal before
				// it returns; strata's handler is still registered.
				goruntime.LockOSThread()
				defer goruntime.UnlockOSThread()
				if err := unix.Tgkill(os.Getpid(), unix.Gettid(), sig); err != nil {
					t.Error(err)
				}
			}
			var code int
			_, errOut := captureStd(t, func() { code = execute(context.Background(), []string{"version"}, nil) })
			if code != 128+int(sig) {
				t.Errorf("exit status %d, want %d", code, 128+int(sig))
			}
			if want := "received " + unix.SignalName(sig) + " as the command finished"; !strings.Contains(errOut, want) {
				t.Errorf("stderr %q, want it to say %q", errOut, want)
			}
		})
	}
	afterCommand = nil
	if code := execute(context.Background(), []string{"version"}, nil); code != 0 {
		t.Errorf("without a signal: exit status %d", code)
	}
}

func TestSignalStatus(t *testing.T) {
	for sig, want := range map[os.Signal]int{os.Interrupt: 130, syscall.SIGTERM: 143, syscall.SIGQUIT: 131} {
		if got := signalStatus(sig); got != want {
			t.Errorf("signalStatus(%v) = %d, want %d", sig, got, want)
		}
	}
}
