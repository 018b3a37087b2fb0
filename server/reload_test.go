package server

import (
	"reflect"
	"strings"
	"testing"

	"github.com/keyward/keyward/config"
)

// reloadable are the settings outside keys that SIGHUP applies; every other
// one, changed, must make Reload fail by name (restartOnly), never be
// ignored while "configuration reloaded" is logged (issue 14 finding 3).
var reloadable = map[string]bool{
	"tezos.authorized_keys": true, "tezos.allowed_origins": true, "tezos.list_known_keys": true, "tezos.allow_non_loopback": true,
	"tezos.tls.cert": true, "tezos.tls.key": true, "tezos.tls.client_ca": true,
	"ethereum.tokens_file": true, "ethereum.allow_non_loopback": true,
	"ethereum.tls.cert": true, "ethereum.tls.key": true, "ethereum.tls.client_ca": true,
	"server.shutdown_timeout": true, "server.readyz_details": true,
}

func TestRestartOnly_EverySettingReloadsOrIsRefusedByName(t *testing.T) {
	var leaves []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			path := strings.TrimPrefix(prefix+"."+name, ".")
			if path == "keys" {
				continue // per key: Reload rebuilds every policy, refuses a new key or ref
			}
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				walk(f.Type, path)
				continue
			}
			leaves = append(leaves, path)
		}
	}
	walk(reflect.TypeFor[config.Config](), "")
	base := func() *config.Config {
		return &config.Config{Tezos: config.TezosConfig{TLS: &config.TLSConfig{}}, Ethereum: config.EthereumConfig{TLS: &config.TLSConfig{}}}
	}
	for _, path := range leaves {
		a, b := base(), base()
		set(t, reflect.ValueOf(b).Elem(), strings.Split(path, "."))
		changed := restartOnly(a, b)
		switch {
		case reloadable[path] && len(changed) > 0:
			t.Errorf("%s is reloadable but a change makes Reload fail: %v", path, changed)
		case !reloadable[path] && len(changed) == 0:
			t.Errorf("%s changed: Reload neither applies it nor refuses it", path)
		}
	}
}

// set changes the field at path of v (a struct) to a value unlike its zero.
func set(t *testing.T, v reflect.Value, path []string) {
	t.Helper()
	for i := 0; i < v.NumField(); i++ {
		name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
		if name != path[0] {
			continue
		}
		f := v.Field(i)
		if len(path) > 1 {
			if f.Kind() == reflect.Pointer {
				f = f.Elem()
			}
			set(t, f, path[1:])
			return
		}
		switch f.Kind() {
		case reflect.String:
			f.SetString("changed")
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Int, reflect.Int64:
			f.SetInt(7)
		case reflect.Uint64:
			f.SetUint(7)
		case reflect.Slice:
			f.Set(reflect.Append(reflect.MakeSlice(f.Type(), 0, 1), reflect.New(f.Type().Elem()).Elem()))
		default:
			t.Fatalf("%v: cannot change a %v", path, f.Kind())
		}
		return
	}
	t.Fatalf("no field %v", path)
}
