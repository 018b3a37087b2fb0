package server

import (
	"net/http"

	"github.com/keyward/keyward/chains/ethereum/rpc"
	"github.com/keyward/keyward/config"
)

// ethereumHandler builds the Ethereum JSON-RPC handler for ethereum.listen.
func (s *Server) ethereumHandler(cfg *config.Config) (http.Handler, error) {
	return rpc.NewHandler(rpc.Options{
		Ring:           s.Ring,
		Pipeline:       s.pipeline,
		Log:            s.log,
		ChainID:        cfg.Ethereum.ChainID,
		Upstream:       cfg.Ethereum.Upstream,
		Tokens:         s.tokens.Load,
		MaxBodyBytes:   cfg.Ethereum.MaxBodyBytes,
		MaxBatch:       cfg.Ethereum.MaxBatch,
		ClientIdentity: CertSubject,
	})
}
