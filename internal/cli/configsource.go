package cli

// configsource.go: which configuration a subcommand runs with — -config,
// else $SMTPKIT_CONFIG, else /etc/smtpkit/smtpkit.toml when it exists,
// else the built-in development default, which is said on stderr with the
// data directory it uses (it is relative to the working directory).

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"smtpkit/internal/config"
)

// ConfigEnv is the environment variable that names the config file for
// every subcommand when -config is not given (sendmail run from cron, git
// or PHP cannot pass flags).
const ConfigEnv = "SMTPKIT_CONFIG"

// resolveConfig is config.Resolve with $SMTPKIT_CONFIG and the note about
// the development default written to notes (nil: no note).
func resolveConfig(path string, notes io.Writer) (config.Config, string, error) {
	return resolveConfigEnv(path, os.Getenv, notes)
}

func resolveConfigEnv(path string, getenv func(string) string, notes io.Writer) (config.Config, string, error) {
	if path == "" {
		path = getenv(ConfigEnv)
	}
	cfg, source, err := config.Resolve(path)
	if err == nil && source == config.DevDefaultSource && notes != nil {
		dir, aerr := filepath.Abs(cfg.DataDir)
		if aerr != nil {
			dir = cfg.DataDir
		}
		fmt.Fprintf(notes, "smtpkit: no %s and no -config or %s: using the %s, data dir %s\n",
			config.DefaultPath, ConfigEnv, source, dir)
	}
	return cfg, source, err
}
