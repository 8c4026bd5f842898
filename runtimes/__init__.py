"""segedge's runtime side: everything an app needs to run an exported model, without torch."""
