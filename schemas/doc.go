// Package schemas is Kiln's shared contract: the event envelope, the EVENTS
// stream and its subjects, and the embedded JSON Schema registry that every
// service validates against.
package schemas
