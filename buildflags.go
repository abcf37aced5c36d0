package strata

import (
	"flag"
	"fmt"
	"strings"

	"github.com/strata-build/strata/internal/cmdline"
	"github.com/strata-build/strata/internal/layertype"
	"github.com/strata-build/strata/storage/layer"
	"github.com/strata-build/strata/storage/registry"
)

// BuildFlags are the flags of `strata build`, defined here once so that
// the command, `strata publish` and STRATA_FLAGS (ParseBuildFlags) accept
// the same ones with the same meaning. Register them on a flag set, parse
// it, then take the Options.
type BuildFlags struct {
	opts  Options
	types cmdline.Strings
	share sharingFlags
	param ParamFlags
}

// Register defines the flags of `strata build` on fs.
func (b *BuildFlags) Register(fs *flag.FlagSet) {
	b.RegisterShared(fs)
	fs.BoolVar(&b.opts.DryRun, "dry-run", false, "print what would be built, cached or encoded, in order and why, and do nothing")
}

// RegisterShared defines the flags of every command that builds: those of
// `strata build` but --dry-run, which `strata publish` has a meaning of
// its own for.
func (b *BuildFlags) RegisterShared(fs *flag.FlagSet) {
	b.param.Register(fs)
	fs.BoolVar(&b.opts.AllowUnpinnedURLs, "allow-unpinned-urls", false, "let URL imports and tarball URLs go without a sha256 (downloaded at every build)")
	fs.StringVar(&b.opts.Store, "store", DefaultStore(), "store `folder` (unpacked layers, cache, blobs)")
	fs.StringVar(&b.opts.Layout, "layout", DefaultLayout(), "output OCI layout `folder`")
	fs.BoolVar(&b.opts.NoCache, "no-cache", false, "rebuild every selected image")
	fs.BoolVar(&b.opts.NoWait, "no-wait", false, "fail at once when another build holds the store")
	fs.IntVar(&b.opts.Jobs, "jobs", 0, "images built at once (default: number of processors)")
	fs.BoolVar(&b.opts.FailFast, "fail-fast", false, "stop every image when one fails")
	fs.Var(&b.types, "layer-type", "layer `type`: tar+gzip (default), tar+zstd, squashfs or erofs; repeat for several")
	fs.BoolVar(&b.opts.NoVerity, "no-verity", false, "write squashfs and erofs layers without their dm-verity tree and root hash annotation")
	fs.BoolVar(&b.opts.NoSBOM, "no-sbom", false, "store and publish no SBOM (SPDX JSON of the image's dpkg, apk and Go packages) beside the images")
	fs.StringVar(&b.opts.SquashfsWriter, "squashfs-writer", layer.SquashfsNative, "squashfs `encoder`: native (strata's own) or mksquashfs (squashfs-tools)")
	fs.StringVar(&b.opts.Backend, "backend", "", "run the steps on a BuildKit daemon at `address` (unix://PATH, buildkit://HOST:PORT, docker-container://NAME, kube-pod://POD) instead of here")
	fs.BoolVar(&b.opts.ShellOnFailure, "shell-on-failure", false, "open a shell in a failed step's container before reporting the failure")
	b.share.register(fs)
}

// Options returns the options the parsed flags give; a bad value (a layer
// type, a progress mode, a parameters file) is an error that names it.
func (b *BuildFlags) Options() (Options, error) {
	o := b.opts
	for _, s := range b.types {
		t, err := layertype.Parse(s)
		if err != nil {
			return o, cmdline.UsageError{Err: err}
		}
		o.LayerTypes = append(o.LayerTypes, t)
	}
	switch o.SquashfsWriter {
	case layer.SquashfsNative, layer.SquashfsMksquashfs:
	default:
		return o, cmdline.UsageError{Err: fmt.Errorf("--squashfs-writer %q: want %s or %s", o.SquashfsWriter, layer.SquashfsNative, layer.SquashfsMksquashfs)}
	}
	if err := b.share.apply(&o); err != nil {
		return o, err
	}
	params, err := b.param.Params()
	if err != nil {
		return o, err
	}
	o.Params = params
	return o, nil
}

// ParseBuildFlags parses args as `strata build` does and returns the
// options and the image names among them. It is how a program other than
// the CLI (a mage target with its own arguments) takes the CLI's flags.
func ParseBuildFlags(args []string) (Options, []string, error) {
	fs := flag.NewFlagSet("strata build", flag.ContinueOnError)
	var bf BuildFlags
	bf.Register(fs)
	names, err := cmdline.Parse(fs, args)
	if err != nil {
		return Options{}, nil, err
	}
	opts, err := bf.Options()
	return opts, names, err
}

// sharingFlags are the flags of commands that talk to registries or show
// progress: build and publish.
type sharingFlags struct {
	cacheFrom cmdline.Strings
	cacheTo   string
	progress  string
	insecure  bool
	insecureH cmdline.Strings
	caFile    string
	creds     string
}

func (s *sharingFlags) register(fs *flag.FlagSet) {
	fs.Var(&s.cacheFrom, "cache-from", "registry `REPO` whose build cache stands in for running the steps of images not in the store; repeatable")
	fs.StringVar(&s.cacheTo, "cache-to", "", "registry `REPO` that receives the layers and cache record of every image built")
	fs.StringVar(&s.progress, "progress", "auto", "progress `mode`: auto (live on a terminal, plain lines otherwise), tty or plain")
	fs.BoolVar(&s.insecure, "insecure", false, "allow plain HTTP and unverifiable TLS certificates for every registry call")
	fs.Var(&s.insecureH, "insecure-registry", "allow plain HTTP and unverifiable TLS certificates for the registry `HOST[:PORT]` only; repeatable")
	fs.StringVar(&s.caFile, "ca-file", "", "PEM `file` of a private CA that signs registry certificates")
	fs.StringVar(&s.creds, "creds", "", "registry credentials `USER:PASSWORD` (default: the docker config, then the containers auth file)")
}

func (s *sharingFlags) apply(o *Options) error {
	switch s.progress {
	case "auto", "tty", "plain":
	default:
		return cmdline.UsageError{Err: fmt.Errorf("--progress=%q: use auto, tty or plain", s.progress)}
	}
	o.Progress = s.progress
	o.CacheFrom = append(o.CacheFrom, s.cacheFrom...)
	if s.cacheTo != "" {
		o.CacheTo = s.cacheTo
	}
	o.Registry.Insecure = o.Registry.Insecure || s.insecure
	for _, h := range s.insecureH {
		host, err := registry.RegistryHost(h)
		if err != nil {
			return cmdline.UsageError{Err: fmt.Errorf("--insecure-registry: %w", err)}
		}
		o.Registry.InsecureHosts = append(o.Registry.InsecureHosts, host)
	}
	if s.caFile != "" {
		o.Registry.CAFile = s.caFile
	}
	if s.creds != "" {
		user, pass, _ := strings.Cut(s.creds, ":")
		o.Registry.Username, o.Registry.Password = user, pass
	}
	return nil
}
