package core

import "testing"

func TestParsePLCURLs(t *testing.T) {
	us, err := ParsePLCURLs("url", " https://a:1/ ,https://b:2")
	if err != nil || len(us) != 2 || us[0].String() != "https://a:1" || us[1].String() != "https://b:2" {
		t.Fatalf("%v %v", us, err)
	}
	for _, bad := range []string{"", "https://a,", "https://a,https://a", "https://a,b", ","} {
		if _, err := ParsePLCURLs("url", bad); ErrorCode(err) != Invalid {
			t.Errorf("ParsePLCURLs(%q): %v", bad, err)
		}
	}
}

func FuzzParsePLCURLs(f *testing.F) {
	f.Add("https://a:1,https://b:2")
	f.Add(",,")
	f.Fuzz(func(t *testing.T, s string) {
		us, err := ParsePLCURLs("url", s)
		if err == nil && len(us) == 0 {
			t.Fatalf("%q: no URL and no error", s)
		}
		for _, u := range us {
			if u.Host == "" {
				t.Fatalf("%q: URL without host %v", s, u)
			}
		}
	})
}
