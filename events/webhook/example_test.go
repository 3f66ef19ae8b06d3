package webhook_test

import (
	"fmt"
	"time"

	"github.com/berth-dev/berth/events/webhook"
)

// A receiver checks the Berth-Signature header of each delivery against
// the raw body before trusting it.
func ExampleVerify() {
	secret := []byte("shared-secret-of-at-least-16-bytes")
	body := []byte(`{"specversion":"1.0","id":"7","source":"/berth","type":"dev.berth.tag.created"}`)
	sent := time.Unix(1800000000, 0)
	header := webhook.Sign(secret, sent, body) // what the sender puts in Berth-Signature

	fmt.Println(webhook.Verify(secret, header, body, sent.Add(time.Second), 0))
	fmt.Println(webhook.Verify(secret, header, []byte(`{"forged":true}`), sent, 0))
	fmt.Println(webhook.Verify(secret, header, body, sent.Add(time.Hour), 0))
	// Output:
	// <nil>
	// webhook: invalid signature
	// webhook: invalid signature: timestamp outside the tolerance
}
