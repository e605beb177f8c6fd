// Command composecheck loads a Compose file and env files with Docker Compose's own Go library
// (github.com/compose-spec/compose-go/v2) and prints, as JSON, what Compose would hand each container:
// the parsed env files, and per service the interpolated environment, entrypoint and command.
// Tests use it to check that values survive the env file and the Compose file byte for byte.
//
// Usage: composecheck -f compose.yaml [-f more.yaml] [--env-file .env.addons] [--project-dir DIR]
// Only the variables of the env files and of this process's environment are used for interpolation.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/dotenv"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

type service struct {
	Environment map[string]*string `json:"environment"`
	Entrypoint  []string           `json:"entrypoint"`
	Command     []string           `json:"command"`
	Image       string             `json:"image"`
	Healthcheck []string           `json:"healthcheck,omitempty"`
}

type output struct {
	Dotenv   map[string]string  `json:"dotenv"`
	Services map[string]service `json:"services"`
}

func main() {
	var files, envFiles multi
	flag.Var(&files, "f", "compose file (repeatable)")
	flag.Var(&envFiles, "env-file", "env file (repeatable)")
	dir := flag.String("project-dir", ".", "project directory")
	name := flag.String("project-name", "composecheck", "project name")
	flag.Parse()
	if len(files) == 0 {
		fail(fmt.Errorf("at least one -f compose file is required"))
	}
	out := output{Dotenv: map[string]string{}, Services: map[string]service{}}
	if len(envFiles) > 0 {
		parsed, err := dotenv.GetEnvFromFile(map[string]string{}, envFiles)
		if err != nil {
			fail(fmt.Errorf("env file: %w", err))
		}
		out.Dotenv = parsed
	}
	opts, err := cli.NewProjectOptions(files,
		cli.WithWorkingDirectory(*dir),
		cli.WithName(*name),
		cli.WithOsEnv,
		cli.WithEnvFiles(envFiles...),
		cli.WithDotEnv,
	)
	if err != nil {
		fail(err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		fail(err)
	}
	for svcName, svc := range project.Services {
		var health []string
		if svc.HealthCheck != nil {
			health = svc.HealthCheck.Test
		}
		out.Services[svcName] = service{
			Environment: svc.Environment,
			Entrypoint:  svc.Entrypoint,
			Command:     svc.Command,
			Image:       svc.Image,
			Healthcheck: health,
		}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "composecheck:", err)
	os.Exit(2)
}
