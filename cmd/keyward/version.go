package main

import "github.com/keyward/keyward/server"

// version is the line "keyward version" prints after "keyward ".
func version() string { return server.ReadBuildInfo().String() }
