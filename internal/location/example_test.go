package location_test

import (
	"fmt"

	"github.com/berth-dev/berth/internal/location"
)

func Example() {
	c, err := location.NewChecker([]string{"eu-central-1", "local"}, map[location.Kind]string{location.Metadata: "eu-central-1"},
		&location.Options{HintFlag: "--location-hint"})
	if err != nil {
		panic(err)
	}
	fmt.Println(c.Check(location.Blob, "--blob-url", "s3://images?region=eu-central-1"))
	fmt.Println(c.Check(location.Keeper, "--keeper-url", "awskms://arn:aws:kms:us-east-1:111122223333:key/k"))
	fmt.Println(c.Check(location.Metadata, "--meta-url", "postgres://berth:secret@db.internal/berth"))
	fmt.Println(c.Check(location.Blob, "--blob-url", "azblob://images"))
	// Output:
	// eu-central-1 <nil>
	//  location: --keeper-url awskms://arn:aws:kms:us-east-1:111122223333:key/k is in us-east-1, which is not an allowed location (allowed: eu-central-1, local)
	// eu-central-1 <nil>
	//  location: --blob-url azblob://images: an Azure storage account's location is not in its URL; give it with the --location-hint blob=<location>
}
