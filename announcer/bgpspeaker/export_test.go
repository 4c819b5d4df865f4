package bgpspeaker

import (
	"context"

	api "github.com/osrg/gobgp/v3/api"
)

// FailNextWithdrawal makes the next withdrawal of s fail with err, as if GoBGP had refused it;
// the rest goes to the real server.
func FailNextWithdrawal(s *Speaker, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paths = &failOnce{pathAPI: s.paths, err: err}
}

type failOnce struct {
	pathAPI
	err error // returned by the next DeletePath, then nil
}

func (f *failOnce) DeletePath(ctx context.Context, r *api.DeletePathRequest) error {
	if err := f.err; err != nil {
		f.err = nil
		return err
	}
	return f.pathAPI.DeletePath(ctx, r)
}
