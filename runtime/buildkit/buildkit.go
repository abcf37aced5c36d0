// Package buildkit runs the steps of strata's images on BuildKit
// (buildkitd, or a builder buildx manages) through BuildKit's Go client:
// `strata build --backend unix:///run/buildkit/buildkitd.sock`.
//
// Each image becomes one LLB graph: its parent's root file system, read
// from the store's blobs through the session, the steps as exec and file
// operations, and a DiffOp that makes their changes one layer, exported
// back as an OCI layout. strata unpacks that layer as the image's upper
// dir and goes on as after a local run (runtime.Backend): the cache keys,
// encodings, configs and tags stay strata's.
//
// Importing the package registers the backend with runtime.OpenBackend;
// cmd/strata does, and a magefile that wants it imports it for its side
// effect. The definitions program never links it.
package buildkit

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	contentlocal "github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/moby/buildkit/client"
	_ "github.com/moby/buildkit/client/connhelper/dockercontainer" // docker-container://
	_ "github.com/moby/buildkit/client/connhelper/kubepod"         // kube-pod://
	_ "github.com/moby/buildkit/client/connhelper/podmancontainer" // podman-container://
	_ "github.com/moby/buildkit/client/connhelper/ssh"             // ssh://
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/secrets/secretsprovider"
	"github.com/moby/buildkit/util/entitlements"
	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"
	"golang.org/x/sync/errgroup"

	"github.com/strata-build/strata/runtime"
)

func init() {
	runtime.RegisterBackend(Open, "buildkit", "tcp", "unix", "docker-container", "kube-pod", "podman-container", "ssh")
}

// Backend is a connection to one BuildKit daemon.
type Backend struct {
	addr string
	c    *client.Client

	mu sync.Mutex
	// made holds, by cache key, the images solved in this build: the
	// images on them chain their graphs from there, and the daemon's
	// cache has them, so nothing is sent or unpacked again.
	made map[digest.Digest]*graph
	// store is the store's blobs as the session serves them, opened by
	// the first solve (opening one probes the file system).
	store     content.Store
	storePath string
}

// blobs is the read-only content store of the OCI layout at path.
func (b *Backend) blobs(path string) (content.Store, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.store == nil || b.storePath != path {
		s, err := contentlocal.NewStore(path)
		if err != nil {
			return nil, err
		}
		b.store, b.storePath = readOnly{s}, path
	}
	return b.store, nil
}

// Open connects to the BuildKit daemon at addr: buildkit://HOST:PORT
// (plain TCP, as tcp://), unix://PATH, or a connection helper of
// BuildKit's client (docker-container://NAME, kube-pod://POD,
// podman-container://NAME, ssh://HOST), which is how buildx's builders are
// reached. It asks the daemon for its version, so that an address nothing
// answers at fails before any image is built.
func Open(ctx context.Context, addr string) (runtime.Backend, error) {
	// containerd's content store, which the client opens on the store's
	// blobs, warns through logrus on every open that the file system has
	// no fs-verity; strata does not use it, and its log is its own.
	logrus.StandardLogger().SetLevel(logrus.ErrorLevel)
	dial := addr
	if rest, ok := strings.CutPrefix(addr, "buildkit://"); ok {
		dial = "tcp://" + rest
	}
	c, err := client.New(ctx, dial)
	if err != nil {
		return nil, fmt.Errorf("--backend %s: %w", addr, err)
	}
	ictx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := c.Info(ictx); err != nil {
		c.Close()
		return nil, fmt.Errorf("--backend %s: no BuildKit daemon answers there: %w", addr, err)
	}
	return &Backend{addr: addr, c: c, made: map[digest.Digest]*graph{}}, nil
}

func (b *Backend) String() string { return "buildkit " + b.addr }

// Close closes the connection.
func (b *Backend) Close() error { return b.c.Close() }

// storeID names the store's blobs in the session.
const storeID = "strata-store"

// Run solves job on the daemon and streams the one layer the solve
// exports to job.Layer.
//
// An image's graph chains from its parent's as the daemon solved it
// earlier in the build, which the daemon's cache holds. Should the daemon
// have dropped it, the solve would run the parent's steps again and could
// make another parent than the one strata recorded (a step that writes
// random bytes): then the image is solved again, its parent read from the
// store.
func (b *Backend) Run(ctx context.Context, job *runtime.Job) error {
	ranAgain, err := b.solve(ctx, job, false)
	if err == nil && ranAgain {
		b.mu.Lock()
		clear(b.made)
		b.mu.Unlock()
		_, err = b.solve(ctx, job, true)
	}
	return err
}

// errSolveEnded ends the export's stream when the solve returns.
var errSolveEnded = errors.New("the solve ended")

// solve is one solve of job; ranAgain says that steps of the images it
// chains from ran, not taken from the daemon's cache.
func (b *Backend) solve(ctx context.Context, job *runtime.Job, noChain bool) (ranAgain bool, err error) {
	g, err := b.lower(job, noChain)
	if err != nil {
		return false, err
	}
	def, err := g.state.Marshal(ctx)
	if err != nil {
		return false, fmt.Errorf("image %q: make the LLB graph: %w", job.Image, err)
	}
	store, err := b.blobs(job.Blobs)
	if err != nil {
		return false, err
	}
	// The OCI exporter's tar stream is read as it comes: the layer goes
	// straight into job.Layer, never written here as a blob first.
	pr, pw := io.Pipe()
	opt := client.SolveOpt{
		Exports: []client.ExportEntry{{
			Type: client.ExporterOCI,
			// zstd at its quickest: the layer is unpacked once, here.
			Attrs:  map[string]string{"compression": "zstd", "compression-level": "1", "oci-mediatypes": "true"},
			Output: func(map[string]string) (io.WriteCloser, error) { return pw, nil },
		}},
		LocalMounts:         g.locals,
		OCIStores:           map[string]content.Store{storeID: store},
		Session:             []session.Attachable{secretsprovider.FromMap(g.secrets)},
		AllowedEntitlements: []string{entitlements.EntitlementNetworkHost.String()},
	}
	ch := make(chan *client.SolveStatus)
	p := newProgress(job, g)
	eg, ectx := errgroup.WithContext(ctx)
	eg.Go(func() error {
		_, err := b.c.Solve(ectx, def, opt, ch)
		// After an export the client closed it already; otherwise this
		// ends the reader below.
		pw.CloseWithError(errSolveEnded)
		return err
	})
	eg.Go(func() error {
		p.follow(ch)
		return nil
	})
	eg.Go(func() error {
		err := readExport(pr, job, p)
		pr.CloseWithError(err) // a failed unpack stops the export
		return err
	})
	if err := eg.Wait(); err != nil {
		if strings.Contains(err.Error(), "granting entitlement network.host is not allowed") {
			return false, fmt.Errorf("%w: strata's steps run in the host's network, as they do locally; start buildkitd with --allow-insecure-entitlement network.host (buildx create --buildkitd-flags '--allow-insecure-entitlement network.host')", err)
		}
		return false, p.failure(err)
	}
	if p.inheritedRan() {
		return true, nil
	}
	b.mu.Lock()
	b.made[job.Key] = g
	b.mu.Unlock()
	return false, nil
}

// readExport reads the OCI exporter's tar stream and hands the one layer
// blob in it to job.Layer: the only compressed blob, where the config,
// manifest and index are JSON. A layer made on a parent the daemon made
// anew is read past: the image is solved again.
func readExport(r io.Reader, job *runtime.Job, p *progress) error {
	tr := tar.NewReader(r)
	layers := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) || errors.Is(err, errSolveEnded) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("the exported layout: %w", err)
		}
		if h.Typeflag != tar.TypeReg || !strings.HasPrefix(h.Name, "blobs/") {
			continue
		}
		br := bufio.NewReaderSize(tr, 1<<16)
		magic, _ := br.Peek(4)
		if !bytes.HasPrefix(magic, zstdMagic) && !bytes.HasPrefix(magic, gzipMagic) {
			continue
		}
		if layers++; layers > 1 {
			return errors.New("BuildKit exported more than one layer: the DiffOp reused its inputs' layers")
		}
		if p.inheritedRan() {
			continue
		}
		if err := job.Layer(br); err != nil {
			return fmt.Errorf("unpack the layer: %w", err)
		}
	}
}

var (
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
	gzipMagic = []byte{0x1f, 0x8b}
)

// readOnly hands the daemon the store's blobs and nothing more: the
// session's content API also has writers and deletes, which must never
// reach the store.
type readOnly struct{ content.Store }

var errReadOnly = errors.New("strata's store is read-only to BuildKit")

func (readOnly) Writer(context.Context, ...content.WriterOpt) (content.Writer, error) {
	return nil, errReadOnly
}

func (readOnly) Delete(context.Context, digest.Digest) error { return errReadOnly }
