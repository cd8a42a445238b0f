package core

// Rotation ids.

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"
)

// idGen makes rotation ids that sort by creation: milliseconds, then a counter within the
// millisecond (and across a clock step back), then randomness so replicas do not collide.
type idGen struct {
	mu     sync.Mutex
	lastMS int64
	seq    uint16
}

func (g *idGen) next() string {
	g.mu.Lock()
	ms := time.Now().UnixMilli()
	if ms <= g.lastMS {
		ms = g.lastMS
		g.seq++
		if g.seq == 0 { // 65536 ids in one millisecond: borrow the next one
			ms++
		}
	} else {
		g.seq = 0
	}
	g.lastMS = ms
	seq := g.seq
	g.mu.Unlock()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("rot_%011x%04x%s", ms, seq, hex.EncodeToString(b[:]))
}
