import Testing
import WardenServer
