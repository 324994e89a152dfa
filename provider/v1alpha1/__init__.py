"""Generated from proto/provider/v1alpha1/service.proto; see scripts/gen_proto.py."""
