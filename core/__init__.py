"""The bottom layer: settings and the root error. Imports nothing else of the project.

Importing it switches third-party analytics off (core.privacy): nothing phones home.
"""

from core.privacy import no_phone_home

no_phone_home()
