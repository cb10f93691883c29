"""Use cases: one function per thing a user does (publish, yank, prune, approve, create a
token...), each rule applied here once, whichever edge calls it.

May import: ``core``, ``db``, ``storage``, ``config``, ``errors``; never an edge (``cli``,
``server``, ``web``) or a client-side package.

Calling convention: ``session`` first. A service that reads or writes rows takes the caller's
``Session`` (the edge opens it: ``services.db.read()``, ``services.db.run_write(...)``) and
neither commits nor announces. A service takes the ``Services`` context first only when it
needs more than one transaction: the blob store (publish, gc, fsck, export), several
transactions (prune, migrate), or announcing a change to the page caches after its commit
(``serials.write``: bump, commit, announce, as one unit of work). After the first argument:
the actor or principal, then the subject (project name, ...), then keyword options.

``context.Services`` is that context (settings, database, blob store, change listeners), built
once per process; parameters holding it are named ``services``, which is why modules import
the package's modules by name (``from nightwheels.services import audit``), never the
package itself.
"""
