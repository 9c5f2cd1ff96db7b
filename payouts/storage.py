"""Where private uploads are stored (business payees' invoices): Django's storage API, never a public URL.

The files live under settings.PRIVATE_MEDIA_ROOT (STORAGES["private"]), outside MEDIA_ROOT, which the proxy serves at
/media/. Anything that asked this storage for a URL would be about to link a private file publicly: it raises, and
the files are read only through views that check who asks (members' own, finance's in admin).
"""

from django.core.files.storage import FileSystemStorage, storages


class PrivateFileSystemStorage(FileSystemStorage):
    def url(self, name):
        raise NotImplementedError("private files have no URL: serve them through a permission-checked view")


def private_storage():
    """The private storage (a callable, so a FileField's migration does not freeze the backend)."""
    return storages["private"]
