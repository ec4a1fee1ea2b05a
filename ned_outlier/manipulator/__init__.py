"""Manipulators: rewrite a FaceParams sequence's expression code toward a target emotion or a reference style."""
