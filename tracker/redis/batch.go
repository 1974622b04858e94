package redis

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// A batcher sends the announces that arrive together as one pipeline: one
// write and one read for all of them, on the client and on the server,
// where each would otherwise cost its own. Under load most of an
// announce's cost on both sides is those system calls, not the script.
//
// A few workers take calls from a queue: a worker takes the first call it
// finds, every other call queued by then (up to maxBatch), and runs them.
// With little load each call goes alone, at once; with much, calls queue
// while the workers' round trips are in flight, and the batches grow.
type batcher struct {
	s      *Store
	queue  chan *call
	stop   chan struct{}
	wg     sync.WaitGroup
	closed atomic.Bool
}

// call is one script call handed to the batcher: args is the whole
// command, EVALSHA and the script's SHA1 first.
type call struct {
	ctx  context.Context
	sc   script
	args []any
	res  any
	err  error
	done chan struct{} // closed once res and err are set
}

var calls = sync.Pool{New: func() any { return &call{args: make([]any, 0, 8), done: make(chan struct{}, 1)} }}

// newCall returns a call of sc, from the pool, to fill in args and run.
func newCall(ctx context.Context, sc script) *call {
	c := calls.Get().(*call)
	c.ctx, c.sc, c.args = ctx, sc, c.args[:0]
	return c
}

// release puts c back in the pool.
func release(c *call) {
	clear(c.args)
	c.ctx, c.args, c.res, c.err = nil, c.args[:0], nil, nil
	calls.Put(c)
}

const (
	// batchWorkers is the number of pipelines in flight at once: enough to
	// keep a server busy while the others' replies travel.
	batchWorkers = 4
	// maxBatch is the most calls one pipeline carries.
	maxBatch = 64
)

func newBatcher(s *Store) *batcher {
	b := &batcher{s: s, queue: make(chan *call, 4096), stop: make(chan struct{})}
	for range batchWorkers {
		b.wg.Add(1)
		go b.work()
	}
	return b
}

// close stops the workers; calls still queued are answered with err. It
// reports whether the batcher was open.
func (b *batcher) close(err error) bool {
	if b.closed.Swap(true) {
		return false
	}
	close(b.stop)
	b.wg.Wait()
	for {
		select {
		case c := <-b.queue:
			c.err = err
			c.done <- struct{}{}
		default:
			return true
		}
	}
}

// run sends c in the next batch, and waits for its answer until its
// context ends.
func (b *batcher) run(c *call) (any, error) {
	ctx := c.ctx
	if b.closed.Load() {
		release(c)
		return nil, goredis.ErrClosed
	}
	select {
	case b.queue <- c:
	case <-ctx.Done():
		release(c)
		return nil, ctx.Err()
	}
	select {
	case <-c.done:
		res, err := c.res, c.err
		release(c)
		return res, err
	case <-ctx.Done():
		// The worker still holds c: it is dropped, not reused.
		return nil, ctx.Err()
	}
}

func (b *batcher) work() {
	defer b.wg.Done()
	batch := make([]*call, 0, maxBatch)
	cmds := make([]*goredis.Cmd, 0, maxBatch)
	for {
		batch = batch[:0]
		select {
		case <-b.stop:
			return
		case c := <-b.queue:
			batch = append(batch, c)
		}
	more:
		for len(batch) < maxBatch {
			select {
			case c := <-b.queue:
				batch = append(batch, c)
			default:
				break more
			}
		}
		cmds = b.exec(batch, cmds)
	}
}

// exec runs a batch as one pipeline and answers its calls. A call whose
// caller gave up meanwhile is answered without being sent.
func (b *batcher) exec(batch []*call, cmds []*goredis.Cmd) []*goredis.Cmd {
	live := batch[:0]
	for _, c := range batch {
		if err := c.ctx.Err(); err != nil {
			c.err = err
			c.done <- struct{}{}
			continue
		}
		live = append(live, c)
	}
	if len(live) == 0 {
		return cmds
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.s.p.Timeout.Duration)
	defer cancel()
	pipe := b.s.client.Pipeline()
	cmds = cmds[:0]
	for _, c := range live {
		cmds = append(cmds, pipe.Do(ctx, c.args...))
	}
	start := time.Now()
	_, err := pipe.Exec(ctx)
	b.s.metrics.observe(opBatch, start, err)
	if err != nil && goredis.HasErrorPrefix(err, "NOSCRIPT") {
		// A server lost its scripts (restarted, SCRIPT FLUSH): the calls
		// it refused are sent again with the scripts' source, which loads
		// them. The others ran, and must not run twice.
		for i, c := range live {
			if goredis.HasErrorPrefix(cmds[i].Err(), "NOSCRIPT") {
				eval := append([]any{"eval", c.sc.src}, c.args[2:]...)
				cmds[i] = b.s.client.Do(ctx, eval...)
			}
		}
	}
	for i, c := range live {
		c.res, c.err = cmds[i].Result()
		c.done <- struct{}{}
	}
	return cmds
}
