package awskms

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyward/keyward/internal/testutil"
)

// emulatorRegion is the region the emulator puts in its ARNs.
const emulatorRegion = "eu-west-1"

func TestMain(m *testing.M) {
	// Dummy credentials; never read the developer's ~/.aws or ask IMDS.
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":           "keyward-test",
		"AWS_SECRET_ACCESS_KEY":       "keyward-test",
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
	} {
		os.Setenv(k, v)
	}
	os.Unsetenv("AWS_PROFILE")
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	code := m.Run()
	if emuBuildDir != "" {
		os.RemoveAll(emuBuildDir)
	}
	os.Exit(code)
}

var (
	emuBuildOnce sync.Once
	emuBuildDir  string
	emuBin       string
	emuBuildErr  error
)

// emulatorBinary builds the local-kms emulator pinned in internal/tools once
// per test binary (LOCAL_KMS_BIN names a prebuilt one). A failed build skips
// the test, or fails it under CI=true.
func emulatorBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("LOCAL_KMS_BIN"); p != "" {
		return p
	}
	emuBuildOnce.Do(func() {
		emuBuildDir, emuBuildErr = os.MkdirTemp("", "keyward-local-kms-")
		if emuBuildErr != nil {
			return
		}
		emuBin = filepath.Join(emuBuildDir, "local-kms")
		cmd := exec.Command("go", "build", "-o", emuBin, "github.com/nsmithuk/local-kms")
		cmd.Dir = filepath.Join(testutil.RepoRoot(), "internal", "tools")
		if out, err := cmd.CombinedOutput(); err != nil {
			emuBuildErr = fmt.Errorf("go build local-kms in internal/tools: %v\n%s", err, out)
		}
	})
	testutil.Need(t, "local-kms (KMS emulator)", emuBuildErr)
	return emuBin
}

// emulator is one local-kms process on a loopback port with its own data
// directory; it can be stopped and started again on the same port and data.
type emulator struct {
	t       testing.TB
	bin     string
	port    int
	dataDir string
	mu      sync.Mutex
	cmd     *exec.Cmd
	log     syncBuffer
}

// syncBuffer collects the emulator's output; exec copies into it from its own goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startEmulator(t testing.TB) *emulator {
	t.Helper()
	e := &emulator{t: t, bin: emulatorBinary(t), port: testutil.FreePort(t), dataDir: t.TempDir()}
	e.start()
	t.Cleanup(func() {
		e.stop()
		if t.Failed() {
			t.Logf("local-kms log:\n%s", e.log.String())
		}
	})
	return e
}

func (e *emulator) start() {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	cmd := exec.Command(e.bin)
	cmd.Env = append(os.Environ(),
		"PORT="+strconv.Itoa(e.port),
		"KMS_REGION="+emulatorRegion,
		"KMS_DATA_PATH="+e.dataDir,
		"KMS_SEED_PATH="+filepath.Join(e.dataDir, "no-seed.yaml"),
	)
	cmd.Stdout, cmd.Stderr = &e.log, &e.log
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("start local-kms: %v", err)
	}
	e.cmd = cmd
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", e.addr(), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("local-kms did not listen on %s: %v\n%s", e.addr(), err, e.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *emulator) stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cmd == nil {
		return
	}
	_ = e.cmd.Process.Kill()
	_ = e.cmd.Wait()
	e.cmd = nil
}

func (e *emulator) addr() string { return "127.0.0.1:" + strconv.Itoa(e.port) }

// ref is the key reference of keyID through the emulator's endpoint.
func (e *emulator) ref(keyID string, params ...string) string {
	s := "awskms://" + e.addr() + "/" + keyID
	for i, p := range params {
		if i == 0 {
			s += "?" + p
		} else {
			s += "&" + p
		}
	}
	return s
}

// client is a plain SDK client for the emulator, for test set-up (DisableKey, …).
func (e *emulator) client() *kms.Client {
	return kms.New(kms.Options{
		Region:       emulatorRegion,
		BaseEndpoint: aws.String("http://" + e.addr()),
		Credentials:  credentials.NewStaticCredentialsProvider("keyward-test", "keyward-test", ""),
	})
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}
