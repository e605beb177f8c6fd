//go:build tools

// Package tools pins the S3-compatible server (versitygw, POSIX backend) the backup tests upload to.
package tools

import (
	_ "github.com/versity/versitygw/cmd/versitygw"
)
