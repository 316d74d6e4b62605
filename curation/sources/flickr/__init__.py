"""The Flickr source: search or id-list discovery with a resumable journal, licences, and
the photo fetch."""
