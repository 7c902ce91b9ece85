package image

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"
)

// progressBar draws one line, "pull alpine [=====>   ] 45% 12.3/27.4 MB
// 5.2 MB/s", redrawn in place. It exists only when the writer is a
// terminal; a nil *progressBar does nothing, so scripts and logs get no
// carriage-return noise.
type progressBar struct {
	w     io.Writer
	label string
	total int64 // bytes expected; -1 when not known
	n     atomic.Int64
	start time.Time
	width int

	stop chan struct{}
	wg   sync.WaitGroup
}

type terminalFile interface {
	io.Writer
	Fd() uintptr
}

func newProgress(w io.Writer, label string, total int64) *progressBar {
	f, ok := w.(terminalFile)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	width, _, err := term.GetSize(int(f.Fd()))
	if err != nil || width < 40 {
		width = 80
	}
	b := &progressBar{w: w, label: label, total: total, start: time.Now(), width: width, stop: make(chan struct{})}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-b.stop:
				return
			case <-t.C:
				fmt.Fprint(b.w, "\r"+renderBar(b.label, b.n.Load(), b.total, time.Since(b.start), b.width))
			}
		}
	}()
	return b
}

func (b *progressBar) add(n int64) {
	if b != nil {
		b.n.Add(n)
	}
}

// done draws the final state and ends the line.
func (b *progressBar) done(ok bool) {
	if b == nil {
		return
	}
	close(b.stop)
	b.wg.Wait()
	total := b.total
	if ok && total >= 0 {
		b.n.Store(total)
	}
	line := renderBar(b.label, b.n.Load(), total, time.Since(b.start), b.width)
	if !ok {
		line += " failed"
	}
	fmt.Fprint(b.w, "\r"+line+"\n")
}

// renderBar formats one progress line that fits in width columns.
func renderBar(label string, n, total int64, elapsed time.Duration, width int) string {
	rate := ""
	if s := elapsed.Seconds(); s > 0.05 {
		rate = "  " + humanBytes(int64(float64(n)/s)) + "/s"
	}
	if total <= 0 {
		line := fmt.Sprintf("%s  %s%s", label, humanBytes(n), rate)
		return pad(line, width)
	}
	if n > total {
		n = total
	}
	frac := float64(n) / float64(total)
	tail := fmt.Sprintf(" %3.0f%%  %s / %s%s", frac*100, humanBytes(n), humanBytes(total), rate)
	barWidth := width - len(tail) - 4 - 22
	if barWidth < 10 {
		barWidth = 10
	}
	if r := []rune(label); len(r) > 20 {
		label = "…" + string(r[len(r)-19:])
	}
	filled := int(frac * float64(barWidth))
	bar := strings.Repeat("=", filled)
	if filled < barWidth {
		bar += ">" + strings.Repeat(" ", barWidth-filled-1)
	}
	return pad(fmt.Sprintf("%-20s [%s]%s", label, bar, tail), width)
}

// pad cuts or fills line to width-1 columns, so that redrawing a shorter
// line leaves nothing of the last one and the cursor never wraps.
func pad(line string, width int) string {
	r := []rune(line)
	if len(r) >= width {
		return string(r[:width-1])
	}
	return line + strings.Repeat(" ", width-1-len(r))
}

func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n), 0
	for f >= unit && i < 4 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %cB", f, "kMGTP"[i-1])
}
