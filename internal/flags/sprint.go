package flags

import "fmt"

func sprintType(x any) string { return fmt.Sprintf("%T", x) }
