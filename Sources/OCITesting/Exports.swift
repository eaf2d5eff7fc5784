// Sample content (RandomContent, SeededGenerator, Tar) is part of the test tools too.
@_exported import SampleContent
