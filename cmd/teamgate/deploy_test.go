package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The config embedded in the Kubernetes example must be one teamgate accepts.
func TestDeployKubernetesConfigIsValid(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "kubernetes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	found := false
	for {
		var doc struct {
			Kind string            `yaml:"kind"`
			Data map[string]string `yaml:"data"`
		}
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if doc.Kind != "ConfigMap" {
			continue
		}
		found = true
		e := mapEnv(map[string]string{"TEAMGATE_CLIENT_SECRET": "x", "TEAMGATE_SESSION_SECRET": strings.Repeat("s", 32), "TEAMGATE_DB_PASSWORD": "p"})
		if _, err := parseConfig("kubernetes.yaml ConfigMap", []byte(doc.Data["config.yaml"]), e); err != nil {
			t.Errorf("%v", err)
		}
	}
	if !found {
		t.Error("no ConfigMap in deploy/kubernetes.yaml")
	}
}
